"""The Ray Tune fan-out of ``breastflow select``: one function trial per checkpoint.

``tune.Tuner(tune.with_resources(tune.with_parameters(evaluate_trial, payload=...), resources),
param_space={"checkpoint": tune.grid_search(uris)}, tune_config=TuneConfig(max_concurrent_trials=...),
run_config=RunConfig(storage_path=<local temp>, failure_config=FailureConfig(max_failures=0)))``.
Each trial asks for 1 CPU plus, when the cluster has GPUs, a GPU fraction; the number of
trials at once follows the cluster's resources. The trials show in the Ray dashboard as
``evaluate_trial`` actors while they run. Ray is reached through
:func:`breastflow.train.ray_cluster.init_ray` (an instance already initialised is used and
left running; one started here is shut down at the end).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def plan_resources(cluster: dict[str, float], n_trials: int, gpu_per_trial: float | None = None,
                   max_concurrent: int | None = None) -> tuple[dict[str, float], int]:
    """Per-trial resources and the number of trials at once for a cluster's resources.

    1 CPU per trial; with GPUs in ``cluster``, a GPU share of ``gpu_per_trial`` (default: the
    GPUs shared evenly by the trials that run at once, at most 1). Trials at once: at most
    ``max_concurrent`` (default: the CPUs), what the GPUs allow at that share, and ``n_trials``.

    Args:
        cluster: ``ray.cluster_resources()`` (``"CPU"``, ``"GPU"``).
        n_trials: trials to run.
        gpu_per_trial: GPU share of one trial, or ``None``.
        max_concurrent: user's cap, or ``None``.
    """
    cpus = max(1, int(cluster.get("CPU", 1)))
    gpus = float(cluster.get("GPU", 0.0))
    concurrent = max(1, min(n_trials, max_concurrent or cpus, cpus))
    resources: dict[str, float] = {"cpu": 1}
    if gpus > 0:
        share = gpu_per_trial or min(1.0, gpus / concurrent)
        resources["gpu"] = share
        concurrent = max(1, min(concurrent, math.floor(gpus / share + 1e-9)))
    return resources, concurrent


def trial_resources(n_trials: int, gpu_per_trial: float | None, max_concurrent: int | None) -> tuple[dict, int]:
    """:func:`plan_resources` for the Ray cluster this process is connected to."""
    import ray

    return plan_resources(ray.cluster_resources(), n_trials, gpu_per_trial, max_concurrent)


def error_text(error: BaseException) -> str:
    """The failing trial's own exception as ``Type: message`` (not Ray's wrapper and traceback)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        error = cause
    text = str(error).strip()
    if "Traceback" in text:  # a RayTaskError string: keep its last line, the original exception
        text = [line for line in text.splitlines() if line.strip()][-1].strip()
        return text
    return f"{type(error).__name__}: {text}"


def fan_out(checkpoints: list[str], payload: dict[str, Any], config, on_start: Callable[[], None] | None = None,
            ) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """Evaluate ``checkpoints`` on Ray Tune; returns ``(records by checkpoint, failures)``.

    Args:
        checkpoints: checkpoint folder URIs, one trial each.
        payload: the trial settings (:func:`breastflow.select.trial.run_trial`); the storage
            variables of this process are added for the workers.
        config: the :class:`~breastflow.select.run.SelectConfig` (``max_concurrent``, ``gpu_per_trial``).
        on_start: called once Ray is connected.
    """
    from breastflow.train.ray_cluster import apply_ray_env, init_ray, storage_env

    apply_ray_env()
    import ray
    from ray import tune

    from breastflow.select.run import cleanup_dir, temp_dir
    from breastflow.select.trial import evaluate_trial

    started = init_ray()
    storage = temp_dir()
    try:
        if on_start is not None:
            on_start()
        resources, concurrent = trial_resources(len(checkpoints), config.gpu_per_trial, config.max_concurrent)
        log.info("select: %d trials, %s each, %d at once", len(checkpoints), resources, concurrent)
        trainable = tune.with_resources(tune.with_parameters(evaluate_trial,
                                                             payload={**payload, "env": storage_env()}), resources)
        tuner = tune.Tuner(
            trainable,
            param_space={"checkpoint": tune.grid_search(list(checkpoints))},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name=f"select-{config.model}-{config.run}", storage_path=storage,
                                      failure_config=tune.FailureConfig(max_failures=0), verbose=0),
        )
        grid = tuner.fit()
        records: dict[str, dict[str, Any]] = {}
        failed: list[dict[str, str]] = []
        for result in grid:
            uri = result.config["checkpoint"]
            if result.error is not None:
                failed.append({"checkpoint": uri, "error": error_text(result.error)})
            else:
                record = dict(result.metrics)
                record["notes"] = json.loads(record.get("notes") or "[]")
                records[uri] = record
        order = {uri: i for i, uri in enumerate(checkpoints)}
        failed.sort(key=lambda f: order.get(f["checkpoint"], 0))
        return records, failed
    finally:
        cleanup_dir(storage)
        if started:
            ray.shutdown()
