"""The Ray Tune trial of ``breastflow select``: evaluate one checkpoint, store the record, return it.

:func:`evaluate_trial` is the function trainable (``config["checkpoint"]`` from the grid search);
everything else comes through ``tune.with_parameters`` (object store, never the trial's
``params.json``, since it holds the storage variables). It writes the checkpoint's evaluation
record to the store itself, so a driver that dies mid-way loses no finished trial.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

#: keys of a trial's result besides the metric values
TRIAL_KEYS = ("values", "epoch", "synthetic", "seconds", "cache_hits", "cache_misses", "notes", "checkpoint")


def _device(evaluation: dict[str, Any]) -> str | None:
    """The evaluation device: the configured one, else CUDA when Ray gave this trial a GPU."""
    if evaluation.get("device"):
        return evaluation["device"]
    try:
        import ray

        if ray.get_gpu_ids():
            return "cuda"
    except Exception:  # noqa: BLE001 - outside Ray (sequential use): CPU
        return None
    return None


def run_trial(checkpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Evaluate ``checkpoint`` as described by ``payload`` and store the record; returns it.

    Args:
        checkpoint: checkpoint folder URI.
        payload: ``selection``, ``evaluation`` (EvaluationConfig JSON), ``expect`` (training
            dataset version or None), ``roi``, ``cache_root``, ``dataset_key``, ``store``,
            ``model``, ``run``, ``config_key``, ``env`` (storage variables), ``threads``.
    """
    import torch

    from breastflow.evaluate.checkpoint import evaluate_checkpoint_details
    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.metrics.cache import FeatureCache
    from breastflow.select.results import eval_file, write_stored_eval
    from breastflow.store.fs import StoreLocation, storage_options_from_env

    os.environ.update(payload.get("env", {}))
    if payload.get("threads"):
        torch.set_num_threads(int(payload["threads"]))
    start = time.perf_counter()
    evaluation = dict(payload["evaluation"])
    evaluation["device"] = _device(evaluation)
    config = EvaluationConfig.model_validate(evaluation)
    root = payload["cache_root"]
    cache = FeatureCache(root, storage_options_from_env(root))
    detail = evaluate_checkpoint_details(checkpoint, payload["selection"], config,
                                         expect_dataset_version=payload["expect"], roi=payload["roi"],
                                         feature_cache=cache, dataset_key=payload["dataset_key"])
    seconds = {**detail.seconds, "total": time.perf_counter() - start}
    record = {"checkpoint": checkpoint, "epoch": detail.epoch, "synthetic": detail.synthetic,
              "values": detail.values, "seconds": seconds, "notes": list(detail.notes),
              "cache_hits": cache.hits, "cache_misses": cache.misses, "config_key": payload["config_key"],
              "selection": payload["selection"], "train_dataset_version": detail.dataset_version}
    loc = StoreLocation.from_url(payload["store"])
    write_stored_eval(loc, eval_file(payload["model"], payload["run"], checkpoint, payload["config_key"]), record)
    return record


def evaluate_trial(config: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Ray Tune function trainable: one checkpoint (``config["checkpoint"]``) per trial."""
    record = run_trial(config["checkpoint"], payload)
    out = {key: record[key] for key in TRIAL_KEYS}
    out["notes"] = json.dumps(record["notes"])  # a string: Tune's loggers take no lists (decoded by the driver)
    return out
