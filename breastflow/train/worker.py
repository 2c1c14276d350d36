"""``train_func_per_worker``: the training loop each Ray Train worker runs (layer 3 of Ray's example).

It receives only small, picklable data (the run's :class:`~breastflow.train.config.TrainRun`
as JSON data) and builds everything else itself: the loader (:mod:`.loader`),
the model (:func:`breastflow.models.build_model`), DDP through
``ray.train.torch.prepare_model``. Per epoch it trains, averages the losses over
batches and ranks, reports them to Ray (the dashboard shows them), appends them
to ``losses.csv`` (with ``val_mae``/``val_psnr`` every ``validate_every`` epochs when
validation is on: :mod:`.validation`; rank 0 computes, every rank reports the value) and,
every ``checkpoint_every`` epochs and after the last one, saves a checkpoint (rank 0 writes ``state.pt`` and ``samples.png``; every rank
calls ``ray.train.report``). At start it resumes from ``ray.train.get_checkpoint()``
when Ray hands one (a restarted worker group, or the same run started again).

Precision: fp32 on CPU (DDP over gloo); on CUDA bf16 autocast and channels-last.
Anchor: Ray ``python/ray/train/examples/pytorch/torch_fashion_mnist_example.py``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from breastflow.data import keys
from breastflow.data.datasets import StoreDataset
from breastflow.models import GanModel, build_model
from breastflow.models.base import unwrap
from breastflow.train.checkpoint import (
    SAMPLES_FILE,
    checkpoint_dir_name,
    read_checkpoint_state,
    restore_rng,
    save_checkpoint,
)
from breastflow.train.config import TrainRun
from breastflow.train.loader import build_loader, set_loader_epoch
from breastflow.train.losses_log import LossLog
from breastflow.train.resume import resume_model
from breastflow.train.samples import save_sample_grid
from breastflow.train.validation import VAL_KEYS, Validator

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed ``torch``, ``numpy`` and ``random`` of this process."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _has_trainable(network: nn.Module) -> bool:
    return any(p.requires_grad for p in network.parameters())


def wrap_for_ddp(model: GanModel, cuda: bool) -> None:
    """Wrap every network with trainable parameters in DDP (``prepare_model``); channels-last first on CUDA."""
    from ray.train.torch import prepare_model

    def wrap(name: str, network: nn.Module) -> nn.Module:
        if cuda:
            network = network.to(memory_format=torch.channels_last)
        if not _has_trainable(network):
            return network
        return prepare_model(network, move_to_device=False)

    model.wrap_networks(wrap)


@contextlib.contextmanager
def unwrapped(model: GanModel) -> Iterator[GanModel]:
    """The model with its plain networks for the duration (rank-0-only inference must not enter DDP collectives)."""
    wrapped = dict(model.networks)
    model.networks = {name: unwrap(net) for name, net in wrapped.items()}
    try:
        yield model
    finally:
        model.networks = wrapped


def _first_items(data: StoreDataset, count: int) -> dict[str, Any]:
    """A fixed batch of the first ``count`` items, spread over the dataset (same for every checkpoint)."""
    step = max(1, len(data) // count)
    items = [data[i] for i in range(0, len(data), step)][:count]
    return {k: torch.stack([it[k] for it in items]) for k in (keys.IMAGE, keys.TARGET)}


def _mean_over_ranks(sums: dict[str, float], batches: int, world: int) -> dict[str, float]:
    names = sorted(sums)
    values = torch.tensor([sums[n] / max(batches, 1) for n in names], dtype=torch.float64)
    if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        backend_device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
        values = values.to(backend_device)
        torch.distributed.all_reduce(values)
        values = values.cpu() / world
    return {n: float(v) for n, v in zip(names, values.tolist(), strict=True)}


def _broadcast_from_rank0(values: dict[str, float], names: tuple[str, ...], world: int) -> dict[str, float]:
    """Rank 0's ``values`` on every rank (other ranks pass ``{}``), so every rank reports the same keys."""
    if world <= 1 or not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return values
    backend_device = "cuda" if torch.distributed.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([values.get(n, 0.0) for n in names], dtype=torch.float64, device=backend_device)
    torch.distributed.broadcast(tensor, src=0)
    return {n: float(v) for n, v in zip(names, tensor.cpu().tolist(), strict=True)}


def _validation_due(epoch: int, every: int, total: int) -> bool:
    return every > 0 and (epoch % every == 0 or epoch == total)


def _to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4 and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


def train_func_per_worker(config: dict[str, Any]) -> None:
    """Train one rank of a run (see the module docstring).

    Args:
        config: ``{"train_run": TrainRun JSON data}``.

    Raises:
        breastflow.train.checkpoint.CheckpointMismatchError: the run's checkpoint is of another
            model config or dataset version.
    """
    import ray.train
    import ray.train.torch
    from ray.train import Checkpoint

    run = TrainRun.model_validate(config["train_run"])
    run_json = run.model_dump(mode="json")
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    cuda = device.type == "cuda"

    seed_everything(run.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model = build_model(run.model, run.model_options)
    spec = dict(run.dataset_spec)
    resolution = model.data_resolution()
    if resolution is not None:
        spec["image_size"] = resolution
    loader, data = build_loader(run.store, run.dataset, spec, run.batch_size, run.seed, run.loader_workers)

    checkpoint = ray.train.get_checkpoint()
    seed_everything(run.seed + rank)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = read_checkpoint_state(folder)
        resume_model(model, state, data.version, where=f"{run.run_uri} (epoch {state['epoch']})")
        if rank == 0:
            restore_rng(state["rng"])
        else:
            seed_everything(run.seed + rank + 100_003 * model.epoch)
        log.info("rank %d resumed run %s at epoch %d", rank, run.run, model.epoch)

    model.to(device)
    wrap_for_ddp(model, cuda)
    if run.compile:
        model.wrap_networks(lambda name, network: torch.compile(network) if _has_trainable(network) else network)
    losses = LossLog(run.store, run.run_dir, keep_until=model.epoch) if rank == 0 else None
    samples = _first_items(data, run.samples) if rank == 0 else None
    validator = (Validator(run.store, run.dataset, spec, run.validation_items)
                 if run.validate_every and rank == 0 else None)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    model.train()

    total = model.total_epochs
    for epoch in range(model.epoch, total):
        model.begin_epoch(epoch)
        if model.data_resolution() not in (None, resolution):
            resolution = model.data_resolution()
            spec["image_size"] = resolution
            loader, data = build_loader(run.store, run.dataset, spec, run.batch_size, run.seed, run.loader_workers)
            samples = _first_items(data, run.samples) if rank == 0 else None
            if validator is not None:
                validator.set_image_size(resolution)
        set_loader_epoch(loader, data, epoch)
        sums: dict[str, float] = defaultdict(float)
        batches = 0
        for batch in loader:
            with autocast():
                step_losses = model.train_step(_to_device(batch, device, cuda))
            for name, value in step_losses.items():
                sums[name] += float(value)
            batches += 1
        model.end_epoch()
        metrics: dict[str, Any] = {**_mean_over_ranks(sums, batches, world), "epoch": model.epoch,
                                   "step": model.step}
        if _validation_due(model.epoch, run.validate_every, total):
            scores: dict[str, float] = {}
            if validator is not None:
                with unwrapped(model):
                    scores = validator.evaluate(model)
            metrics.update(_broadcast_from_rank0(scores, VAL_KEYS, world))
        if losses is not None:
            losses.append(metrics)
        if model.epoch % run.checkpoint_every and model.epoch != total:
            ray.train.report(metrics)
            continue
        with tempfile.TemporaryDirectory(prefix="breastflow-ckpt-") as tmp:
            saved = None
            if rank == 0:
                save_checkpoint(tmp, model, data.version, run_json)
                with unwrapped(model):
                    save_sample_grid(model, samples, Path(tmp) / SAMPLES_FILE)
                model.train()
                saved = Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=saved, checkpoint_dir_name=checkpoint_dir_name(model.epoch))
