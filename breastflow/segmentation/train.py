"""Train and apply one fold's 3D U-Net (MONAI DynUNet), nnU-Net style; a plain function, no Ray yet.

The pieces are MONAI's, configured as nnU-Net trains its ``3d_fullres`` model
(paper 003 sec. 3.4):

* network: :class:`monai.networks.nets.DynUNet` from a :class:`~.plan.SegmentationPlan`
  (instance norm, leaky ReLU, deep supervision);
* loss: :class:`monai.losses.DiceCELoss` (soft Dice + cross-entropy, softmax over
  2 classes); the deep-supervision heads are weighted ``1, 1/2, 1/4 ...`` and
  normalised (nnU-Net);
* patches: :class:`monai.transforms.RandCropByPosNegLabeld` with ``pos=1, neg=2``:
  a third of the patches centred on tumour (nnU-Net's foreground oversampling
  of 33 %), after :class:`~monai.transforms.SpatialPadd` to the patch size, plus
  random flips on the three axes. Each volume is padded and its foreground /
  background indices computed once per fold (:class:`~monai.transforms.FgBgToIndicesd`,
  :func:`patch_inputs`) instead of on every crop, and a worker thread draws the
  epoch's batches ahead of the network (``FoldTrainConfig.prefetch``,
  :class:`EpochPrefetcher`); both leave the patches and the random streams as they were;
* inference: :func:`monai.inferers.sliding_window_inference` with Gaussian
  weighting, overlap 0.5, returning softmax probabilities;
* score: Dice of the argmax against the mask (:func:`monai.metrics.compute_dice`);
* precision: bf16 autocast of the network on CUDA (``FoldTrainConfig.amp``, as nnU-Net's AMP;
  :mod:`~.precision`), loss and softmax in fp32; fp32 throughout on the CPU.

Inputs are preprocessed volumes (:func:`~.preprocess.load_case` with the
plan's target spacing), held in memory: a fold of the phantom is small; real
cohorts stream from the store in the Ray version.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Self

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import compute_dice
from monai.networks.nets import DynUNet
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    RandCropByPosNegLabeld,
    RandFlipd,
    Randomizable,
    SpatialPadd,
)
from monai.utils import set_determinism
from pydantic import BaseModel, ConfigDict, Field

from breastflow.segmentation.plan import SegmentationPlan
from breastflow.segmentation.precision import autocast, fp32_predictor

#: Classes: background and tumour.
N_CLASSES = 2


class OptimizerKind(str, Enum):
    """Optimiser: nnU-Net's SGD (Nesterov, momentum 0.99, poly decay) or Adam (quick CPU runs)."""

    SGD = "sgd"
    ADAM = "adam"


class FoldTrainConfig(BaseModel):
    """How one fold is trained (saved beside its checkpoint).

    Attributes:
        epochs, iterations: epochs and optimiser steps per epoch (nnU-Net: 1000 x 250; paper 003: 500 epochs).
        batch_size: patches per step, drawn ``samples_per_volume`` at a time from random volumes.
        learning_rate, optimizer, weight_decay: the optimiser (poly decay ``(1 - e / E) ** 0.9``).
        foreground_ratio: share of patches centred on tumour (nnU-Net: 1/3).
        overlap: sliding-window overlap at inference.
        seed: MONAI/torch/numpy seed; device: torch device.
        torch_threads: CPU threads of torch while training (``None``: leave as is; Ray tasks set 1).
        prefetch: batches a worker thread draws ahead of the network within an epoch (0: draw each
            batch in the training thread, between steps); the patches are the same either way.
        amp: bf16 autocast of the network's forward (training and sliding-window inference) on CUDA
            only; the loss and the softmax stay fp32. Ignored on the CPU, which keeps fp32, so CPU
            results are exactly those of ``amp=False``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(default=500, ge=1)
    iterations: int = Field(default=250, ge=1)
    batch_size: int = Field(default=2, ge=1)
    samples_per_volume: int = Field(default=2, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    optimizer: OptimizerKind = OptimizerKind.SGD
    weight_decay: float = Field(default=3e-5, ge=0)
    foreground_ratio: float = Field(default=1 / 3, gt=0, lt=1)
    overlap: float = Field(default=0.5, ge=0, lt=1)
    seed: int = 0
    device: str = "cpu"
    torch_threads: int | None = Field(default=None, ge=1)
    prefetch: int = Field(default=2, ge=0)
    amp: bool = True

    @classmethod
    def quick(cls, **overrides: object) -> FoldTrainConfig:
        """A reduced configuration that learns the phantom in seconds on 2 CPU cores."""
        values: dict = {"epochs": 12, "iterations": 10, "batch_size": 4, "samples_per_volume": 2,
                        "learning_rate": 3e-3, "optimizer": OptimizerKind.ADAM}
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Volume:
    """One preprocessed training or test volume: ``image`` and ``mask`` ``(Z, Y, X)`` on one grid."""

    name: str
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class FoldResult:
    """A trained fold: the network (eval mode), its loss per epoch, validation Dice, and the epoch it started at."""

    network: DynUNet
    losses: tuple[float, ...]
    val_dice: float
    start_epoch: int = 0


@dataclass
class FoldState:
    """The whole training state of a fold after ``epoch`` epochs (what a checkpoint holds).

    Attributes:
        epoch: epochs completed; losses: mean loss of each of them.
        network, optimizer, scheduler: ``state_dict`` of each.
        random: the numpy generator's, the patch sampler's and torch's random states, so a
            resumed run draws the same patches as an uninterrupted one.
    """

    epoch: int
    losses: list[float]
    network: dict
    optimizer: dict
    scheduler: dict
    random: dict = field(default_factory=dict)


def build_network(plan: SegmentationPlan) -> DynUNet:
    """The DynUNet of a plan (1 input channel, :data:`N_CLASSES` outputs)."""
    return DynUNet(**plan.dynunet_kwargs(in_channels=1, out_channels=N_CLASSES))


#: Keys of the precomputed foreground and background indices of the (padded) label (``FgBgToIndicesd``'s).
FG_INDICES, BG_INDICES = "label_fg_indices", "label_bg_indices"


def patch_sampler(plan: SegmentationPlan, config: FoldTrainConfig) -> Compose:
    """Pad to the patch, crop ``samples_per_volume`` patches (foreground-oversampled), random flips.

    The crop takes the label's foreground and background indices from :data:`FG_INDICES` and
    :data:`BG_INDICES` when the input has them (:func:`patch_inputs`), and computes them from the
    label otherwise: the same centres either way.
    """
    keys = ["image", "label"]
    neg = (1 - config.foreground_ratio) / config.foreground_ratio
    return Compose([
        SpatialPadd(keys, spatial_size=plan.patch_size),
        RandCropByPosNegLabeld(keys, label_key="label", spatial_size=plan.patch_size, pos=1.0, neg=neg,
                               num_samples=config.samples_per_volume, fg_indices_key=FG_INDICES,
                               bg_indices_key=BG_INDICES),
        RandFlipd(keys, prob=0.5, spatial_axis=0), RandFlipd(keys, prob=0.5, spatial_axis=1),
        RandFlipd(keys, prob=0.5, spatial_axis=2),
    ])


def _sampler_input(volume: Volume) -> dict:
    return {"image": volume.image[None].astype(np.float32), "label": volume.mask[None]}


def patch_inputs(volumes: Sequence[Volume], plan: SegmentationPlan) -> list[dict]:
    """The sampler's input of each volume, prepared once: padded to the patch, with its label's indices.

    What :func:`patch_sampler` would otherwise redo on every call (a float copy of the volume, the
    padding, and a scan of the whole label for its foreground and background voxels,
    :class:`~monai.transforms.FgBgToIndicesd`). The indices are kept as int32 when the padded
    volume has fewer than 2**31 voxels (half the memory of MONAI's int64; a background index list
    is as long as the volume).

    Returns:
        One dict per volume: ``image`` ``(1, Z', Y', X')`` float32, ``label``, :data:`FG_INDICES`,
        :data:`BG_INDICES` (numpy arrays); ``Z', Y', X'`` the volume's shape padded to the patch.
    """
    pad, indices = SpatialPadd(["image", "label"], spatial_size=plan.patch_size), FgBgToIndicesd("label")
    out = []
    for volume in volumes:
        data = indices(pad(_sampler_input(volume)))
        small = data["label"].numel() < 2 ** 31
        out.append({key: np.asarray(value, dtype=np.int32 if small and key in (FG_INDICES, BG_INDICES) else None)
                    for key, value in data.items()})
    return out


Batch = tuple[torch.Tensor, torch.Tensor]


def _batch(volumes: Sequence[Volume | Mapping], sampler: Compose, config: FoldTrainConfig,
           rng: np.random.Generator, to_device: bool = True) -> Batch:
    """``config.batch_size`` patches of random volumes: ``(images, labels)`` on ``config.device``.

    ``volumes``: :class:`Volume` (the sampler pads and scans each on every call) or :func:`patch_inputs`.
    ``to_device=False``: left on the CPU (pinned when ``config.device`` is CUDA, for an asynchronous copy).
    """
    patches: list[dict] = []
    while len(patches) < config.batch_size:
        volume = volumes[int(rng.integers(len(volumes)))]
        patches += sampler(_sampler_input(volume) if isinstance(volume, Volume) else dict(volume))
    patches = patches[:config.batch_size]
    images = torch.stack([torch.as_tensor(np.asarray(p["image"])) for p in patches]).float()
    labels = torch.stack([torch.as_tensor(np.asarray(p["label"])) for p in patches]).long()
    if config.device.startswith("cuda"):
        images, labels = images.pin_memory(), labels.pin_memory()
    if not to_device:
        return images, labels
    return images.to(config.device, non_blocking=True), labels.to(config.device, non_blocking=True)


class EpochPrefetcher:
    """Draws ``count`` items with ``draw`` in a worker thread, at most ``depth`` ahead, in order.

    Use as a context manager and iterate: the iteration yields exactly ``count`` items; an
    exception of ``draw`` is raised in the iterating thread (the worker stops); leaving the
    context stops the worker and waits for it, so after the block nothing runs ``draw`` any more
    (its random streams are the caller's again). ``depth`` 0 draws in the calling thread.

    Raises:
        ValueError: a negative ``count`` or ``depth``.
    """

    def __init__(self, draw: Callable[[], object], count: int, depth: int) -> None:
        if count < 0 or depth < 0:
            raise ValueError(f"EpochPrefetcher: count {count} and depth {depth} must be >= 0")
        self._draw, self._count, self._depth = draw, count, depth
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, item: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for _ in range(self._count):
                if self._stop.is_set() or not self._put((self._draw(), None)):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the iterating thread, which raises it
            self._put((None, error))

    def __enter__(self) -> Self:
        if self._depth > 0 and self._count > 0:
            self._thread = threading.Thread(target=self._produce, name="patch-prefetch", daemon=True)
            self._thread.start()
        return self

    def __iter__(self) -> Iterator:
        for _ in range(self._count):
            if self._thread is None:
                yield self._draw()
                continue
            item, error = self._queue.get()
            if error is not None:
                raise error
            yield item

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def deep_supervision_loss(outputs: torch.Tensor, labels: torch.Tensor, loss: DiceCELoss) -> torch.Tensor:
    """nnU-Net's deep-supervision loss: heads weighted ``1, 1/2, 1/4 ...``, normalised to sum 1.

    Args:
        outputs: ``(B, C, Z, Y, X)`` logits, or ``(B, 1 + n, C, Z, Y, X)`` with ``n`` deep-supervision heads
            (DynUNet in training mode, every head upsampled to the patch).
        labels: ``(B, 1, Z, Y, X)`` class indices.
    """
    if outputs.dim() == labels.dim():
        return loss(outputs, labels)
    heads = torch.unbind(outputs, dim=1)
    weights = [0.5 ** i for i in range(len(heads))]
    return sum(w * loss(h, labels) for w, h in zip(weights, heads, strict=True)) / sum(weights)


@torch.no_grad()
def predict_probabilities(network: torch.nn.Module, image: np.ndarray, plan: SegmentationPlan,
                          config: FoldTrainConfig) -> np.ndarray:
    """Softmax probabilities ``(C, Z, Y, X)`` of one volume by Gaussian-weighted sliding windows.

    The network runs under bf16 autocast on CUDA with ``config.amp``; windows, weights and softmax in fp32.
    """
    network.eval()
    inputs = torch.as_tensor(image[None, None].astype(np.float32), device=config.device)
    logits = sliding_window_inference(inputs, roi_size=plan.patch_size, sw_batch_size=2,
                                      predictor=fp32_predictor(network, config.device, config.amp),
                                      overlap=config.overlap, mode="gaussian")
    return torch.softmax(torch.as_tensor(logits), dim=1)[0].cpu().numpy()


def ensemble_probabilities(networks: Sequence[torch.nn.Module], image: np.ndarray, plan: SegmentationPlan,
                           config: FoldTrainConfig) -> np.ndarray:
    """The folds' ensemble (paper 003, nnU-Net): the mean of each network's softmax, ``(C, Z, Y, X)``.

    Raises:
        ValueError: no network.
    """
    if not networks:
        raise ValueError("an ensemble needs at least one trained fold")
    return np.mean([predict_probabilities(n, image, plan, config) for n in networks], axis=0)


def dice_score(probabilities: np.ndarray, mask: np.ndarray) -> float:
    """Tumour Dice of the argmax of ``probabilities`` ``(C, Z, Y, X)`` against ``mask`` ``(Z, Y, X)``.

    Both empty counts as 1.0 (nothing to find, nothing found); an empty mask with a prediction as 0.0.
    """
    predicted = torch.as_tensor(np.argmax(probabilities, axis=0) == 1)[None, None].float()
    truth = torch.as_tensor(mask > 0)[None, None].float()
    if not truth.any():
        return 1.0 if not predicted.any() else 0.0
    return float(compute_dice(predicted, truth, include_background=True)[0, 0])


def train_fold(train: Sequence[Volume], val: Sequence[Volume], plan: SegmentationPlan,
               config: FoldTrainConfig, resume: FoldState | None = None,
               on_epoch: Callable[[FoldState], None] | None = None) -> FoldResult:
    """Train one fold (from scratch, or on from ``resume``) and score it on its validation volumes.

    Args:
        train, val: preprocessed volumes (at the plan's target spacing, z-scored).
        plan: network and patch configuration; config: training.
        resume: a saved :class:`FoldState`; training continues at ``resume.epoch`` (a state at or
            past ``config.epochs`` only validates).
        on_epoch: called with the state after every epoch (the caller checkpoints it).

    Returns:
        :class:`FoldResult` (validation Dice: mean over ``val``; NaN when ``val`` is empty).

    Raises:
        ValueError: no training volume, or a volume whose image and mask shapes differ.
    """
    if not train:
        raise ValueError("train_fold needs at least one training volume")
    for volume in (*train, *val):
        if volume.image.shape != volume.mask.shape:
            raise ValueError(f"{volume.name}: image {volume.image.shape} and mask {volume.mask.shape} differ")
    threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    try:
        return _train(train, val, plan, config, resume, on_epoch)
    finally:
        torch.set_num_threads(threads)
        set_determinism(seed=None)


def _random_state(rng: np.random.Generator, sampler: Compose) -> dict:
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
            "sampler": [t.R.get_state() for t in sampler.transforms if isinstance(t, Randomizable)]}


def _restore_random(state: dict, rng: np.random.Generator, sampler: Compose) -> None:
    if not state:
        return
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    for transform, saved in zip([t for t in sampler.transforms if isinstance(t, Randomizable)], state["sampler"],
                                strict=True):
        transform.R.set_state(saved)


def _train(train: Sequence[Volume], val: Sequence[Volume], plan: SegmentationPlan, config: FoldTrainConfig,
           resume: FoldState | None, on_epoch: Callable[[FoldState], None] | None) -> FoldResult:
    set_determinism(seed=config.seed)
    rng = np.random.default_rng(config.seed)
    sampler = patch_sampler(plan, config)
    sampler.set_random_state(seed=config.seed)
    inputs = patch_inputs(train, plan)
    network = build_network(plan).to(config.device)
    if config.optimizer is OptimizerKind.SGD:
        optimizer: torch.optim.Optimizer = torch.optim.SGD(network.parameters(), lr=config.learning_rate,
                                                           momentum=0.99, nesterov=True,
                                                           weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: (1 - e / config.epochs) ** 0.9)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    losses: list[float] = []
    start = 0
    if resume is not None:
        network.load_state_dict(resume.network)
        optimizer.load_state_dict(resume.optimizer)
        scheduler.load_state_dict(resume.scheduler)
        _restore_random(resume.random, rng, sampler)
        losses, start = list(resume.losses), resume.epoch
    for epoch in range(start, config.epochs):
        network.train()
        total = 0.0
        # The worker alone touches rng and sampler until the block ends (all the epoch's batches drawn).
        with EpochPrefetcher(lambda: _batch(inputs, sampler, config, rng, False), config.iterations,
                             config.prefetch) as batches:
            for images, labels in batches:
                optimizer.zero_grad(set_to_none=True)
                with autocast(config.device, config.amp):  # bf16 on CUDA (no scaler needed); CPU: fp32
                    outputs = network(images.to(config.device, non_blocking=True))
                value = deep_supervision_loss(outputs.float(), labels.to(config.device, non_blocking=True), loss)
                value.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 12.0)
                optimizer.step()
                total += float(value.detach())
        scheduler.step()
        losses.append(total / config.iterations)
        if on_epoch is not None:
            on_epoch(FoldState(epoch=epoch + 1, losses=list(losses), network=network.state_dict(),
                               optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                               random=_random_state(rng, sampler)))
    network.eval()
    scores = [dice_score(predict_probabilities(network, v.image, plan, config), v.mask) for v in val]
    val_dice = float(np.mean(scores)) if scores else float("nan")
    return FoldResult(network=network, losses=tuple(losses), val_dice=val_dice, start_epoch=start)
