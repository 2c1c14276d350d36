"""The folds of a training set trained in parallel as Ray tasks, each resumable from its store checkpoint.

Why Ray tasks and not Ray Train: a fold is one single-process training (one
CPU thread or one GPU share), with no gradient synchronisation between
workers, so Ray Train's worker group, placement group and controller add
start-up (about 60 s per run on the 2-core machine, shared/ENVIRONMENT.md)
and nothing else. A task per fold (``num_cpus=1``, a GPU fraction when the
cluster has GPUs) runs every fold of every training set in one queue, retries
a fold whose worker died (``max_retries``), and the retry resumes from the
fold's last checkpoint in the store, exactly like a second run does.

Three layers, as the style guide asks: data (:func:`load_volumes`, from the
store by URL inside the worker), the model (:mod:`.train`), and the
per-fold function (:func:`run_fold`, a plain function; :func:`submit_folds`
launches it on Ray). Test prediction is the ensemble of the folds (mean
softmax, :func:`~.train.ensemble_probabilities`) in one task per training
set (:func:`run_ensemble`), which waits for its folds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from breastflow.segmentation.experiment import SegmentationItem
from breastflow.segmentation.fold_store import (
    check_fold_record,
    load_fold_network,
    load_fold_state,
    read_fold_record,
    save_fold_state,
)
from breastflow.segmentation.plan import SegmentationPlan
from breastflow.segmentation.preprocess import (
    PreprocessConfig,
    SegmentationSource,
    load_case,
)
from breastflow.segmentation.scenarios import SourceTransform, identity
from breastflow.segmentation.train import (
    FoldState,
    FoldTrainConfig,
    Volume,
    dice_score,
    ensemble_probabilities,
    train_fold,
)
from breastflow.store.fs import StoreLocation


@dataclass(frozen=True)
class FoldJob:
    """One fold to train: small, picklable (items and configs; the worker reads the volumes itself).

    Attributes:
        store: store URL; training: the training's name (its folder); fold: fold index.
        folder: the fold's checkpoint folder (``segmentation_fold_dir``).
        train, val: the fold's items; plan, preprocess, config: how to load and train.
        transforms: image transform per source (identity by default; a harmonisation generator later).
        checkpoint_every: epochs between checkpoints (the last epoch is always saved).
    """

    store: str
    training: str
    fold: int
    folder: str
    train: tuple[SegmentationItem, ...]
    val: tuple[SegmentationItem, ...]
    plan: SegmentationPlan
    preprocess: PreprocessConfig
    config: FoldTrainConfig
    transforms: Mapping[SegmentationSource, SourceTransform] = field(default_factory=dict)
    checkpoint_every: int = 1


@dataclass(frozen=True)
class FoldOutcome:
    """What a fold did: ``start_epoch`` > 0 when it resumed, ``reused`` when it was already complete;
    ``trained_from``/``trained_to``: wall-clock (``time.time()``) span of its training loop (equal when reused)."""

    training: str
    fold: int
    folder: str
    start_epoch: int
    epochs: int
    losses: tuple[float, ...]
    val_dice: float
    seconds: float
    pid: int
    reused: bool
    trained_from: float = 0.0
    trained_to: float = 0.0


@dataclass(frozen=True)
class EnsembleJob:
    """Predict test items with the ensemble of a training's folds and score them.

    Attributes:
        store, training: as :class:`FoldJob`; folders: the folds' checkpoint folders.
        test: the items to predict (any test source); plan, preprocess, config, transforms: as :class:`FoldJob`.
    """

    store: str
    training: str
    folders: tuple[str, ...]
    test: tuple[SegmentationItem, ...]
    plan: SegmentationPlan
    preprocess: PreprocessConfig
    config: FoldTrainConfig
    transforms: Mapping[SegmentationSource, SourceTransform] = field(default_factory=dict)


def load_volumes(store: str, items: Sequence[SegmentationItem], preprocess: PreprocessConfig,
                 transforms: Mapping[SegmentationSource, SourceTransform] | None = None) -> list[Volume]:
    """Read and preprocess items (:func:`~.preprocess.load_case`), then apply the source's transform.

    The transform sees the preprocessed volume ``(Z, Y, X)`` and the study name.
    """
    volumes = []
    for item in items:
        image, mask, _ = load_case(store, item.case, item.source, preprocess)
        transform = (transforms or {}).get(item.source, identity)
        volumes.append(Volume(item.identifier, np.asarray(transform(image, item.case.study), np.float32), mask))
    return volumes


def run_fold(job: FoldJob) -> FoldOutcome:
    """Train one fold, resuming from its checkpoint, and mark it complete with its validation Dice.

    A complete fold (``fold.json`` says so, trained to at least ``job.config.epochs``) is
    reused without reading any volume.

    Raises:
        FoldCheckpointError: the folder holds a fold of another plan or other items.
    """
    started = time.perf_counter()
    loc = StoreLocation.from_url(job.store)
    train_ids, val_ids = [i.identifier for i in job.train], [i.identifier for i in job.val]
    record = read_fold_record(loc, job.folder)
    if record is not None:
        check_fold_record(record, job.folder, job.plan, train_ids, val_ids)
        if record["complete"] and record["epoch"] >= job.config.epochs:
            return FoldOutcome(job.training, job.fold, job.folder, record["epoch"], record["epoch"],
                               tuple(record["losses"]), float(record["val_dice"]), 0.0, os.getpid(), True)
    resume = load_fold_state(loc, job.folder) if record is not None else None
    last: list[FoldState] = []

    def checkpoint(state: FoldState) -> None:
        last[:] = [state]
        if state.epoch % job.checkpoint_every == 0 or state.epoch == job.config.epochs:
            save_fold_state(loc, job.folder, state, job.plan, job.config, train_ids, val_ids)

    train = load_volumes(job.store, job.train, job.preprocess, job.transforms)
    val = load_volumes(job.store, job.val, job.preprocess, job.transforms)
    trained_from = time.time()
    result = train_fold(train, val, job.plan, job.config, resume=resume, on_epoch=checkpoint)
    trained_to = time.time()
    final = last[0] if last else resume
    if final is not None:
        save_fold_state(loc, job.folder, final, job.plan, job.config, train_ids, val_ids,
                        val_dice=result.val_dice)
    return FoldOutcome(job.training, job.fold, job.folder, result.start_epoch, len(result.losses),
                       result.losses, result.val_dice, time.perf_counter() - started, os.getpid(), False,
                       trained_from, trained_to)


def run_ensemble(job: EnsembleJob) -> dict[str, float]:
    """Dice of the folds' ensemble (mean softmax) on every test item: ``{item identifier: Dice}``.

    Raises:
        FileNotFoundError: a fold has no checkpoint.
    """
    loc = StoreLocation.from_url(job.store)
    networks = [load_fold_network(loc, folder, job.plan, job.config.device) for folder in job.folders]
    threads = torch.get_num_threads()
    if job.config.torch_threads is not None:
        torch.set_num_threads(job.config.torch_threads)
    try:
        scores = {}
        for volume in load_volumes(job.store, job.test, job.preprocess, job.transforms):
            probabilities = ensemble_probabilities(networks, volume.image, job.plan, job.config)
            scores[volume.name] = dice_score(probabilities, volume.mask)
        return scores
    finally:
        torch.set_num_threads(threads)


def _on_device(config: FoldTrainConfig) -> FoldTrainConfig:
    """The config with ``device="cuda"`` when Ray gave this task a GPU."""
    import ray

    return config.model_copy(update={"device": "cuda"}) if ray.get_gpu_ids() else config


def _fold_task(job: FoldJob) -> FoldOutcome:
    return run_fold(replace(job, config=_on_device(job.config)))


def _ensemble_task(job: EnsembleJob, *folds: FoldOutcome) -> dict[str, float]:
    return run_ensemble(replace(job, config=_on_device(job.config)))


def gpu_share(n_parallel: int) -> float:
    """GPU fraction per task on the connected Ray cluster: ``GPUs / n_parallel`` capped at 1, 0 without GPUs."""
    import ray

    gpus = float(ray.cluster_resources().get("GPU", 0.0))
    return 0.0 if gpus <= 0 else min(1.0, gpus / max(1, n_parallel))


def submit_folds(jobs: Sequence[FoldJob], num_gpus: float = 0.0, max_retries: int = 3) -> list:
    """Launch every fold as a Ray task (``num_cpus=1``, ``num_gpus``) on the connected Ray; returns ObjectRefs.

    A task whose worker dies is retried up to ``max_retries`` times and resumes from its checkpoint.
    """
    import ray

    task = ray.remote(_fold_task).options(num_cpus=1, num_gpus=num_gpus, max_retries=max_retries)
    return [task.remote(job) for job in jobs]


def submit_ensemble(job: EnsembleJob, folds: Sequence, num_gpus: float = 0.0, max_retries: int = 3):
    """Launch the ensemble prediction of ``job`` as a Ray task that starts when the ``folds`` refs are done."""
    import ray

    task = ray.remote(_ensemble_task).options(num_cpus=1, num_gpus=num_gpus, max_retries=max_retries)
    return task.remote(job, *folds)


def run_folds(jobs: Sequence[FoldJob], max_retries: int = 3) -> list[FoldOutcome]:
    """Train ``jobs`` in parallel on Ray (connecting with :func:`~breastflow.train.ray_cluster.init_ray`
    unless Ray is up; shut down only if this call started it).

    Returns:
        The outcomes in job order.

    Raises:
        ray.exceptions.RayTaskError: a fold failed (after its retries), with the fold's error.
    """
    from breastflow.train.ray_cluster import init_ray

    started = init_ray(include_dashboard=False)
    import ray

    try:
        return list(ray.get(submit_folds(jobs, gpu_share(len(jobs)), max_retries)))
    finally:
        if started:
            ray.shutdown()
