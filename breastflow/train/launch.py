"""The launcher: one :class:`~breastflow.train.config.TrainRun` -> a Ray ``TorchTrainer`` run -> :class:`TrainResult`.

It checks everything it can before Ray starts workers (model config, weight
files, the dataset and its version, an existing run's checkpoints), saves
``train_run.json`` beside the run, then builds ``ScalingConfig``, ``RunConfig``
(name = the run, storage = ``<store>/checkpoints/<model>``, every checkpoint
kept, ``FailureConfig(max_failures)``) and the ``TorchTrainer`` over
:func:`breastflow.train.worker.train_func_per_worker`. Running the same run name
again continues that run (Ray Train V2: same ``RunConfig`` name and storage path;
the workers resume from its latest checkpoint); a run whose last checkpoint
already reached the planned epochs returns at once, without starting Ray.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from breastflow.data.datasets import build_dataset
from breastflow.models import build_model
from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.train.checkpoint import (
    epoch_of_dir,
    list_checkpoints,
    meta_of,
    read_checkpoint_state,
)
from breastflow.train.config import LOSSES_FILE, RUN_FILE, TrainResult, TrainRun
from breastflow.train.losses_log import read_losses
from breastflow.train.ray_cluster import apply_ray_env, init_ray, storage_env
from breastflow.train.resume import resume_model
from breastflow.train.validation import validation_dataset

log = logging.getLogger(__name__)


def preflight(run: TrainRun) -> str:
    """Everything checkable on the driver; returns the dataset version.

    Raises:
        FileNotFoundError: a weight file the model needs is missing (e.g. VGG19 with perceptual on).
        breastflow.data.datasets.DatasetError: the store cannot give the dataset (missing phase ...).
        breastflow.train.checkpoint.CheckpointMismatchError: the run exists with another config or data.
        breastflow.train.validation.ValidationError: validation is on but the store has no usable
            ``val`` split (or the dataset is not paired image-to-image).
    """
    model = build_model(run.model, run.model_options)
    version = build_dataset(run.dataset, run.store, run.dataset_spec).version
    if run.validate_every:
        validation_dataset(run.store, run.dataset, run.dataset_spec)
    existing = list_checkpoints(run.run_uri)
    if existing:
        state = read_checkpoint_state(existing[-1])
        resume_model(model, state, version, where=existing[-1])
        log.info("run %s continues from %s (epoch %d of %d)", run.run, existing[-1], meta_of(state, "").epoch,
                 run.total_epochs)
    return version


def make_trainer(run: TrainRun, callbacks: Sequence[Any] = ()) -> Any:
    """The ``TorchTrainer`` of ``run`` (call ``.fit()``): name = the run, storage = ``<store>/checkpoints/<model>``,
    every checkpoint kept, ``FailureConfig(max_failures)``; ``callbacks`` go to its ``RunConfig``
    (e.g. Tune's ``TuneReportCallback`` for a sweep trial)."""
    apply_ray_env()
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from breastflow.train.worker import train_func_per_worker

    return TorchTrainer(
        train_func_per_worker,
        train_loop_config={"train_run": run.model_dump(mode="json")},
        scaling_config=ScalingConfig(num_workers=run.workers, use_gpu=run.gpu),
        run_config=RunConfig(
            name=run.run,
            storage_path=run.storage_path,
            failure_config=FailureConfig(max_failures=run.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=None),
            worker_runtime_env={"env_vars": storage_env()},
            callbacks=list(callbacks) or None,
        ),
    )


def launch_training(run: TrainRun, include_dashboard: bool | None = None,
                    on_start: Callable[[], None] | None = None) -> TrainResult:
    """Train ``run`` on Ray Train and return its checkpoints.

    Ray: the instance already initialised in this process, else the cluster at
    ``RAY_ADDRESS``, else a new local one (:func:`breastflow.train.ray_cluster.init_ray`;
    a local instance started here is shut down at the end).

    Args:
        run: the validated run.
        include_dashboard: start the dashboard with a local instance (Ray's default: when installed).
        on_start: called once Ray is connected, before the workers start (e.g. to read the
            dashboard's address, :func:`breastflow.train.follow.dashboard_url`); not called
            for a run that is already complete.

    Raises:
        RayClusterError: ``RAY_ADDRESS`` is unreachable.
        ray.train.TrainingFailedError: the workers failed more than ``max_failures`` times.
        and what :func:`preflight` raises.
    """
    apply_ray_env()  # before Ray is imported: it reads the loopback setting at import
    import ray

    version = preflight(run)
    loc = StoreLocation.from_url(run.store)
    done = list_checkpoints(run.run_uri)
    if done and (epoch_of_dir(done[-1]) or 0) >= run.total_epochs:
        log.info("run %s already has %d of %d epochs; nothing to train", run.run, epoch_of_dir(done[-1]),
                 run.total_epochs)
        rows = read_losses(loc.join(run.run_dir, LOSSES_FILE), loc)
        return TrainResult(run=run.run, run_uri=run.run_uri, checkpoints=done, epochs=epoch_of_dir(done[-1]) or 0,
                           dataset_version=version, metrics=dict(rows[-1]) if rows else {})
    atomic_write_bytes(loc, f"{run.run_dir}/{RUN_FILE}", json.dumps(run.model_dump(mode="json"), indent=2).encode())
    started = init_ray(include_dashboard=include_dashboard)
    try:
        if on_start is not None:
            on_start()
        result = make_trainer(run).fit()
    finally:
        if started:
            ray.shutdown()
    checkpoints = list_checkpoints(run.run_uri)
    epochs = epoch_of_dir(checkpoints[-1]) or 0 if checkpoints else 0
    return TrainResult(run=run.run, run_uri=run.run_uri, checkpoints=checkpoints, epochs=epochs,
                       dataset_version=version, metrics=dict(result.metrics or {}))
