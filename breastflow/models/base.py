"""The contract every GAN family of breastflow fulfils (STYLE habit 1).

The training engine (Ray Train, ``breastflow/train``) and ``breastflow generate``
know only this class. A family is one subclass plus one typed config, both
registered by name (:mod:`breastflow.models.registry`); copy
:mod:`breastflow.models.template` to start a new one.

Anchor: pytorch-CycleGAN-and-pix2pix ``models/base_model.py`` (networks,
optimisers, schedulers owned by the model; ``optimize_parameters`` here is
``train_step``), with the whole state in one dict as nanoGPT's checkpoints.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from breastflow.models.config import ModelConfig

STATE_FORMAT = 1


class ModelStateError(ValueError):
    """A state dict that does not belong to this model (other family, other config, other format)."""


def unwrap(network: nn.Module) -> nn.Module:
    """The plain module behind a ``DistributedDataParallel``/``torch.compile`` wrapper (itself if none)."""
    inner = getattr(network, "module", None)  # DDP / DataParallel
    if isinstance(inner, nn.Module):
        return unwrap(inner)
    orig = getattr(network, "_orig_mod", None)  # torch.compile's OptimizedModule
    if isinstance(orig, nn.Module):
        return unwrap(orig)
    return network


class GanModel(abc.ABC):
    """A GAN family: its networks, optimisers, schedulers and one training step.

    What a subclass supplies:

    * ``name`` and ``config_class`` (class attributes): the registry name and the
      family's frozen pydantic config (a :class:`ModelConfig` subclass).
    * ``__init__(config)``: calls ``super().__init__(config)``, builds its
      networks and puts them in ``self.networks`` (``dict[str, nn.Module]``,
      e.g. ``{"generator": G, "discriminator": D}``), its optimisers in
      ``self.optimizers`` and its LR schedulers (one step per epoch) in
      ``self.schedulers``. Networks are reached through ``self.networks[...]``
      (typed properties help), never cached elsewhere, so the engine can wrap
      them (DDP, ``torch.compile``) with :meth:`wrap_networks`.
    * ``train_step(batch) -> dict[str, float]``: one optimisation step of every
      player on one batch; ``batch`` is keyed by :mod:`breastflow.data.keys`
      (``IMAGE (B, C, H, W)``, ``TARGET (B, C', H, W)``, ``MASK``, ``LABEL (B,)``,
      ``KEY``) and already on the model's device; returns flat floats keyed by
      :mod:`breastflow.models.keys`. It increments ``self.step``.
    * ``generate(image, label=None) -> Tensor``: inference with the
      (first) generator, no gradients, networks in eval mode.
    * optionally ``frozen_modules()`` (loss networks such as VGG19, moved by
      :meth:`to` but not checkpointed), ``begin_epoch(epoch)`` and
      ``data_resolution()`` (growing-resolution families), and
      ``extra_state()``/``load_extra_state()`` for anything else to checkpoint.

    What the base gives: ``end_epoch()`` (steps every scheduler, increments
    ``self.epoch``), the whole-state ``state_dict()``/``load_state_dict()``
    (every network, optimiser, scheduler, the step/epoch counters, the config,
    the family name), ``to(device)``, ``train()``/``eval()``, ``wrap_networks``.

    How the four families of the mission map onto it:

    * **Pix2PixHD** (paired pre -> post contrast, paper 003): networks
      ``generator`` and ``discriminator`` (a multiscale module); batch
      ``IMAGE`` -> ``TARGET``; ``train_step`` = one G step then one D step.
    * **CycleGAN** (unpaired vendor harmonisation): networks ``generator_ab``,
      ``generator_ba``, ``discriminator_a``, ``discriminator_b`` (the small-FOV
      PatchGAN is a config choice of D's depth); optimisers ``generator`` (both
      G) and ``discriminator`` (both D); batch carries ``IMAGE`` from domain A
      and ``TARGET`` from domain B, unpaired (the dataset draws them
      independently); the MI loss is one more term inside ``train_step``;
      ``generate(image, label)`` picks the direction from ``label`` (domain).
    * **Conditional DCGAN / WGAN-GP lesion patches**: networks ``generator`` and
      ``critic``; ``train_step`` runs ``config.critic_steps`` critic updates
      (each on a fresh latent, using :func:`~breastflow.models.gan_losses.gradient_penalty`)
      then one generator update, all inside the one call, so the engine's loop
      is the same; batch ``IMAGE`` = real patches, ``LABEL`` = class;
      ``generate(image, label)`` takes latent noise ``(B, nz)`` as ``image``
      and the class ``label (B,)``.
    * **Progressive WGAN-GP mammograms**: networks ``generator`` and ``critic``
      holding every resolution block; ``begin_epoch(epoch)`` sets the stage
      (resolution) from the epoch schedule in the config, ``train_step`` advances
      the fade-in ``alpha`` from 0 to 1 with the steps inside a stage, and
      ``data_resolution()`` tells the engine which image size the loader must
      deliver now (it rebuilds the loader when that changes); stage and alpha
      are saved by ``extra_state()``; ``generate(image)`` takes latents.

    Args:
        config: the validated family config (an instance of ``config_class``).

    Raises:
        TypeError: if ``config`` is not an instance of the family's ``config_class``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]
    #: config fields that name machine-local things (weight file paths) and may differ on resume
    local_config_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ModelConfig) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}; "
                "build models with breastflow.models.build_model(name, config)"
            )
        self.config = config
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, Optimizer] = {}
        self.schedulers: dict[str, LRScheduler] = {}
        self.step = 0
        self.epoch = 0
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------ family API
    @abc.abstractmethod
    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One optimisation step of every player on ``batch``; returns flat float losses."""

    @abc.abstractmethod
    def generate(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """Generator output for ``image`` (a source image ``(B, C, H, W)`` or latents) and optional ``label``."""

    def frozen_modules(self) -> dict[str, nn.Module]:
        """Fixed helper networks (e.g. VGG19 of a perceptual loss): moved by ``to``, never checkpointed."""
        return {}

    def begin_epoch(self, epoch: int) -> None:
        """Called by the engine before epoch ``epoch`` (0-based); growing-resolution families set their stage."""

    def data_resolution(self) -> int | None:
        """Image size the loader must deliver now, or None if the family does not change it."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """Family state beyond networks/optimisers/schedulers/counters (e.g. progressive stage and alpha)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_state` saved."""

    # ------------------------------------------------------------------ provided
    @property
    def total_epochs(self) -> int:
        """Epochs of a complete run (from the config)."""
        return self.config.total_epochs

    def end_epoch(self) -> None:
        """Step every LR scheduler once and count the epoch."""
        for scheduler in self.schedulers.values():
            scheduler.step()
        self.epoch += 1

    def train(self, mode: bool = True) -> GanModel:
        """Put every network in training (or eval) mode."""
        for network in self.networks.values():
            network.train(mode)
        return self

    def eval(self) -> GanModel:
        """Put every network in eval mode."""
        return self.train(False)

    def to(self, device: torch.device | str) -> GanModel:
        """Move every network, frozen module and optimiser state to ``device``."""
        self.device = torch.device(device)
        for module in [*self.networks.values(), *self.frozen_modules().values()]:
            module.to(self.device)
        for optimizer in self.optimizers.values():
            for param_state in optimizer.state.values():
                for key, value in param_state.items():
                    if isinstance(value, Tensor) and key != "step":
                        param_state[key] = value.to(self.device)
        return self

    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by ``wrap(name, network)`` (DDP, ``torch.compile``); parameters must stay shared.

        Raises:
            ValueError: if a wrapper does not keep the network's parameters (the optimisers would train stale ones).
        """
        for name, network in list(self.networks.items()):
            wrapped = wrap(name, network)
            before = {id(p) for p in network.parameters()}
            if {id(p) for p in wrapped.parameters()} != before:
                raise ValueError(f"wrapping network {name!r} changed its parameters; wrap in place (DDP, compile)")
            self.networks[name] = wrapped

    def parameter_counts(self) -> dict[str, int]:
        """Number of parameters per network."""
        return {name: sum(p.numel() for p in net.parameters()) for name, net in self.networks.items()}

    def state_dict(self) -> dict[str, Any]:
        """The whole training state: enough to resume with the same LR schedule and counters.

        Keys: ``format``, ``model`` (registry name), ``config`` (JSON-able dict),
        ``step``, ``epoch``, ``networks``, ``optimizers``, ``schedulers`` (name ->
        state dict; networks unwrapped from DDP/compile), ``extra``. RNG states
        and the dataset version are the engine's to add beside it.
        """
        return {
            "format": STATE_FORMAT,
            "model": self.name,
            "config": self.config.model_dump(mode="json"),
            "step": self.step,
            "epoch": self.epoch,
            "networks": {name: unwrap(net).state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sch.state_dict() for name, sch in self.schedulers.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output into this (freshly built) model.

        Raises:
            ModelStateError: if the state is of another family, another config,
                another format, or lacks/adds a network, optimiser or scheduler.
        """
        if state.get("format") != STATE_FORMAT:
            raise ModelStateError(f"model state format {state.get('format')!r}, expected {STATE_FORMAT}")
        if state.get("model") != self.name:
            raise ModelStateError(f"state of model {state.get('model')!r} cannot load into model {self.name!r}")
        own = self.config.model_dump(mode="json")
        theirs = dict(state.get("config", {}))
        diff = sorted(
            k for k in own.keys() | theirs.keys() if k not in self.local_config_fields and own.get(k) != theirs.get(k)
        )
        if diff:
            raise ModelStateError(
                f"state was saved with another {self.name} config (differs in {', '.join(diff)}); "
                "build the model from the saved config: breastflow.models.load_model(state)"
            )
        for kind, ours in (("networks", self.networks), ("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            theirs_kind = state.get(kind, {})
            if set(theirs_kind) != set(ours):
                raise ModelStateError(f"state has {kind} {sorted(theirs_kind)}, model has {sorted(ours)}")
        for name, network in self.networks.items():
            unwrap(network).load_state_dict(state["networks"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.load_extra_state(state.get("extra", {}))
