"""``breastflow select``: evaluate every checkpoint of a run on Ray Tune and choose the best.

1. The run's checkpoints (:func:`breastflow.train.checkpoint.list_checkpoints` of
   ``<store>/checkpoints/<model>/<run>``) and the dataset version they must have been trained
   on (the run's ``train_run.json`` dataset spec on today's store).
2. The real selection (default ``series=post_1&split=val&slices=lesion&scale=per-case``:
   paper 003's tumour slices plus 5 % either side, per-case intensity unit), its dataset
   version and the metrics: the criterion's (:mod:`breastflow.select.criteria`; SAMe's five for
   Pix2PixHD) or the user's, plus extra columns (PSNR, MS-SSIM when the images are large
   enough, FRD, LPIPS when its weights are configured) and the lesion-box ``roi_*`` variants.
   FID_Rad needs RadImageNet weights: without them it is left out of the default metrics with a
   note, and named explicitly it is an error (never substituted).
3. The real features of every Fréchet metric are extracted once into the content-keyed cache
   ``<store>/eval/features`` before the fan-out, so every trial reads them.
4. One Ray Tune trial per checkpoint not yet evaluated under this metric config
   (:mod:`breastflow.select.trial`; 1 CPU, a GPU fraction when the cluster has GPUs,
   ``max_concurrent_trials`` from the cluster's resources). Tune's own experiment files go to
   a local temporary folder. A failing trial (corrupt checkpoint, other dataset version, out
   of memory) is reported with its error and left out.
5. The criterion ranks the evaluated checkpoints; ``selected.json`` records the choice
   (:mod:`breastflow.select.results`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from breastflow.evaluate.config import EvaluationConfig
from breastflow.metrics import names
from breastflow.select.criteria import ROI, criterion_for, evaluator_of
from breastflow.select.results import (
    SelectError,
    SelectionResult,
    config_key,
    eval_file,
    read_selection,
    read_stored_eval,
    write_selection,
)
from breastflow.store import layout
from breastflow.store.fs import StoreLocation, read_bytes

__all__ = ["SelectConfig", "SelectError", "SelectionResult", "read_selection", "select_checkpoints"]
log = logging.getLogger(__name__)
#: extra columns computed besides the criterion's metrics (when possible, see :func:`resolve_metrics`)
DEFAULT_EXTRA_METRICS: tuple[str, ...] = (names.PSNR, names.MS_SSIM, names.FRD, names.LPIPS)


class SelectConfig(BaseModel):
    """One selection over a run's checkpoints.

    Attributes:
        store: the store (local path or ``s3://bucket/prefix``).
        model: the run's family (``checkpoints/<model>/<run>``); picks the default criterion.
        run: the training run's name.
        metrics: what the criterion ranks by; empty = the criterion's own (SAMe: fid_img,
            fid_rad, ssim, mse, mae).
        extra_metrics: extra columns; ``None`` = :data:`DEFAULT_EXTRA_METRICS` where possible.
        split, series, slices, scale: the real selection compared with each checkpoint's output.
        criterion: :data:`breastflow.select.criteria.CRITERIA` name; ``None`` = the family's.
        evaluation: data range, weights, device, protocol ... (its ``metrics`` is replaced by
            the resolved list; clipping outside the data range is recorded, not refused: a
            poor checkpoint's output is what selection must score).
        roi: also compute the lesion-box variants ``roi_*``.
        max_concurrent: trials at once; ``None`` = what the cluster's CPUs (and GPUs) allow.
        gpu_per_trial: GPU share of a trial; ``None`` = shared evenly when the cluster has GPUs.
        force: evaluate every checkpoint again, even with a stored evaluation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    store: str = Field(min_length=1)
    model: str = "pix2pixhd"
    run: str
    metrics: tuple[str, ...] = ()
    extra_metrics: tuple[str, ...] | None = None
    split: str = "val"
    series: str = "post_1"
    slices: str = "lesion"
    scale: str = "per-case"
    criterion: str | None = None
    evaluation: EvaluationConfig = Field(default_factory=lambda: EvaluationConfig(allow_clipping=True))
    roi: bool = True
    max_concurrent: int | None = Field(default=None, ge=1)
    gpu_per_trial: float | None = Field(default=None, gt=0, le=1)
    force: bool = False

    def selection_text(self) -> str:
        """The real selection string."""
        from breastflow.data.selection import parse_selection

        base = self.store if "://" in self.store else f"store://{os.path.abspath(self.store)}"
        return parse_selection(f"{base}?series={self.series}&split={self.split}&slices={self.slices}"
                               f"&scale={self.scale}").to_text()


def _weights_configured(evaluation: EvaluationConfig, extractor: str, env_var: str) -> bool:
    return extractor in evaluation.weights or bool(os.environ.get(env_var))


def resolve_metrics(config: SelectConfig, image_shape: tuple[int, int] | None) -> tuple[str, list[str], list[str],
                                                                                       list[str]]:
    """``(criterion, ranked metrics, extra metrics, notes)`` after the FID_Rad / LPIPS / MS-SSIM policy.

    Raises:
        breastflow.registry.RegistryError: an unknown criterion or metric name (nearest names given).
        SelectError: ``fid_rad`` named without RadImageNet weights; nothing left to rank by.
    """
    from breastflow.metrics.features.radimagenet import ENV_VAR as RADIMAGENET_ENV

    name, criterion = criterion_for(config.model, config.criterion)
    named = list(dict.fromkeys(config.metrics))
    for metric in [*named, *(config.extra_metrics or ())]:
        evaluator_of(metric)
    rad_ok = _weights_configured(config.evaluation, "radimagenet", RADIMAGENET_ENV)
    notes: list[str] = []
    if named:
        if names.FID_RAD in named and not rad_ok:
            raise SelectError(f"fid_rad needs RadImageNet weights (set {RADIMAGENET_ENV} or --weights "
                              "radimagenet=PATH); they cannot be downloaded here. Choose other metrics, e.g. frd "
                              "in place of fid_rad")
        ranked = named
    else:
        ranked = list(criterion.metrics)
        if names.FID_RAD in ranked and not rad_ok:
            ranked.remove(names.FID_RAD)
            notes.append(f"fid_rad left out: RadImageNet weights are not configured ({RADIMAGENET_ENV} or "
                         f"--weights radimagenet=PATH); {name} ranks by {', '.join(ranked)} (no metric substituted; "
                         "name one with --metrics, e.g. frd)")
    if not ranked:
        raise SelectError("no metric left to rank the checkpoints by; name some with --metrics")
    if config.extra_metrics is None:
        extra = []
        for metric in DEFAULT_EXTRA_METRICS:
            if metric in ranked:
                continue
            if metric == names.LPIPS and not _weights_configured(config.evaluation, names.LPIPS,
                                                                 "BREASTFLOW_LPIPS_WEIGHTS"):
                notes.append("lpips column left out: no LPIPS weights configured")
                continue
            if metric == names.MS_SSIM and image_shape is not None and not _ms_ssim_fits(image_shape):
                notes.append(f"ms_ssim column left out: images {image_shape} are too small for its 5 scales")
                continue
            extra.append(metric)
    else:
        extra = [m for m in dict.fromkeys(config.extra_metrics) if m not in ranked]
    return name, ranked, extra, notes


def _ms_ssim_fits(shape: tuple[int, int]) -> bool:
    from breastflow.metrics.ssim import MS_SSIM_BETAS, check_ms_ssim_size

    try:
        check_ms_ssim_size(shape, MS_SSIM_BETAS)
    except ValueError:
        return False
    return True


def expected_train_version(loc: StoreLocation, config: SelectConfig, checkpoints: list[str]) -> tuple[str | None, str]:
    """The dataset version the run's checkpoints must have been trained on, and where it came from.

    The run's ``train_run.json`` (else the newest readable checkpoint's run settings) gives the
    dataset family and spec; the version is that dataset's on today's store. ``(None, why)`` when
    neither is readable (the check is then left to each checkpoint's own record).
    """
    from breastflow.data.datasets import build_dataset
    from breastflow.train.checkpoint import read_checkpoint_state
    from breastflow.train.config import RUN_FILE

    run_data: dict[str, Any] | None = None
    where = ""
    try:
        run_data = json.loads(read_bytes(loc, f"{layout.checkpoint_dir(config.model, config.run)}/{RUN_FILE}"))
        where = RUN_FILE
    except (FileNotFoundError, json.JSONDecodeError):
        for uri in reversed(checkpoints):
            try:
                run_data = dict(read_checkpoint_state(uri).get("train_run", {}))
                where = uri
                break
            except Exception as err:  # noqa: BLE001 - an unreadable checkpoint fails in its own trial
                log.debug("run settings not readable from %s: %s", uri, err)
    if not run_data or "dataset" not in run_data:
        return None, "no readable run settings"
    try:
        dataset = build_dataset(run_data["dataset"], config.store, run_data.get("dataset_spec", {}))
    except Exception as err:  # noqa: BLE001 - the store no longer gives the training data: say so, go on
        return None, f"the run's training data ({where}) cannot be read from {config.store}: {err}"
    return dataset.version, where


def select_checkpoints(config: SelectConfig, on_start: Callable[[], None] | None = None) -> SelectionResult:
    """Evaluate the run's checkpoints (one Ray Tune trial each), rank them and record the choice.

    Args:
        config: what to select.
        on_start: called once Ray is connected (e.g. to print the dashboard URL).

    Returns:
        The :class:`SelectionResult`, also written to ``selected.json``.

    Raises:
        SelectError: no checkpoints in the run; ``fid_rad`` without weights; every checkpoint
            failed (each failure listed).
        breastflow.registry.RegistryError: unknown metric or criterion (nearest names given).
        breastflow.data.selection.SelectionError: the real selection is empty or wrong.
    """
    from breastflow.data.selection_loading import load_selection
    from breastflow.evaluate.checkpoint import real_set_key, warm_feature_cache
    from breastflow.metrics.cache import FeatureCache
    from breastflow.store.fs import storage_options_from_env
    from breastflow.train.checkpoint import list_checkpoints

    loc = StoreLocation.from_url(config.store)
    run_uri = loc.join(layout.checkpoint_dir(config.model, config.run))
    criterion_for(config.model, config.criterion)  # unknown criterion: fail before any work
    for metric in [*config.metrics, *(config.extra_metrics or ())]:
        evaluator_of(metric)
    checkpoints = list_checkpoints(run_uri)
    if not checkpoints:
        raise SelectError(f"no checkpoints in {run_uri} (expected epoch_<N>/state.pt folders); train first "
                          f"(breastflow train {config.model} {config.store} --run {config.run}) or check the run name")
    selection = config.selection_text()
    real = load_selection(selection, "real")
    shape = real.images[0].shape if real.images else None
    criterion, ranked, extra, notes = resolve_metrics(config, shape)
    evaluators = [evaluator_of(m) for m in [*ranked, *extra]]
    roi = config.roi or ROI in evaluators
    ev_metrics = tuple(dict.fromkeys(e for e in evaluators if e != ROI))
    if not ev_metrics:
        ev_metrics = (names.MSE,)
    resize = config.evaluation.resize
    sizes = sorted({tuple(img.shape) for img in real.images})
    if resize is None and len(sizes) > 1:
        resize = max(max(size) for size in sizes)
        notes.append(f"the real slices have {len(sizes)} sizes ({', '.join('x'.join(map(str, s)) for s in sizes)}): "
                     f"distribution metrics on every image resized to {resize}x{resize} (the largest side); paired "
                     "and lesion-box metrics at native size")
    evaluation = config.evaluation.model_copy(update={"metrics": ev_metrics, "paired": True, "resize": resize,
                                                      "by": () if config.evaluation.by is None else config.evaluation.by})
    train_version, version_source = expected_train_version(loc, config, checkpoints)
    if train_version is None:
        notes.append(f"the checkpoints' dataset version is not checked ({version_source})")
    dataset_key = real_set_key(selection, real)
    real_version = dataset_key.split("|", 1)[0]
    ev_json = evaluation.model_dump(mode="json")
    key = config_key(ev_json, selection, real_version, train_version, roi)
    cache_root = loc.join(layout.EVAL_FEATURES)
    cache = FeatureCache(cache_root, storage_options_from_env(cache_root))
    t0 = time.perf_counter()
    warm_feature_cache(real, evaluation, cache, dataset_key)
    warm_seconds = time.perf_counter() - t0
    records: dict[str, dict[str, Any]] = {}
    reused: set[str] = set()
    for uri in checkpoints:
        stored = None if config.force else read_stored_eval(loc, eval_file(config.model, config.run, uri, key))
        if stored is not None:
            records[uri] = stored
            reused.add(uri)
    pending = [uri for uri in checkpoints if uri not in records]
    payload = {"selection": selection, "evaluation": ev_json, "expect": train_version, "roi": roi,
               "cache_root": cache_root, "dataset_key": dataset_key, "store": loc.url, "model": config.model,
               "run": config.run, "config_key": key, "threads": 1}
    failed: list[dict[str, str]] = []
    if pending:
        from breastflow.select.fanout import fan_out

        new, failed = fan_out(pending, payload, config, on_start)
        records.update(new)
    elif on_start is not None:
        on_start()
    if not records:
        lines = "\n".join(f"  {f['checkpoint']}: {f['error']}" for f in failed)
        raise SelectError(f"no checkpoint of {run_uri} could be evaluated ({len(failed)} failed):\n{lines}")
    for uri in checkpoints:
        for note in records.get(uri, {}).get("notes", []):
            if note.startswith("WARNING"):
                notes.append(f"{uri.rsplit('/', 1)[-1]}: {note}")
    result = _rank(config, criterion, ranked, extra, checkpoints, records, reused, notes)
    result = result.model_copy(update={
        "run_uri": run_uri, "store": loc.url, "selection": selection, "dataset_version": real_version,
        "train_dataset_version": train_version, "failed": failed,
        "metric_config": {"evaluation": ev_json, "config_key": key, "roi": roi, "criterion": criterion,
                          "feature_cache": cache_root, "warm_cache_seconds": warm_seconds,
                          "warm_cache_misses": cache.misses}})
    return write_selection(loc, result)


def _rank(config: SelectConfig, criterion: str, ranked: list[str], extra: list[str], checkpoints: list[str],
          records: dict[str, dict[str, Any]], reused: set[str], notes: list[str]) -> SelectionResult:
    """Rank the evaluated checkpoints with the criterion and build the result (without locations)."""
    from breastflow.select.criteria import CRITERIA

    order = [uri for uri in checkpoints if uri in records]
    columns = [*ranked, *extra, *[m for m in names.ROI_METRICS.values() if m not in ranked + extra]]
    table = pd.DataFrame(index=order, columns=ranked, dtype=float)
    for uri in order:
        values = records[uri]["values"]
        missing = [m for m in ranked if m not in values]
        if missing:
            raise SelectError(f"the evaluation of {uri} has no {missing} (stored record "
                              f"{records[uri].get('config_key')}); re-run with --force")
        for m in ranked:
            table.loc[uri, m] = float(values[m])
    ranking = CRITERIA.get(criterion).rank(table, ranked)
    if ranking.constant_metrics:
        notes.append(f"constant over the checkpoints (scaled to 0): {', '.join(ranking.constant_metrics)}")
    rows = []
    for uri in order:
        rec = records[uri]
        values = rec["values"]
        row: dict[str, Any] = {"checkpoint": uri, "epoch": int(rec["epoch"]), "synthetic": rec.get("synthetic")}
        for m in columns:
            if m in values:
                row[m] = float(values[m])
                if names.sd_name(m) in values:
                    row[names.sd_name(m)] = float(values[names.sd_name(m)])
        row.update({"same": float(ranking.same[uri]), "score": float(ranking.score[uri]),
                    "scaled": {m: float(ranking.scaled.loc[uri, m]) for m in ranked},
                    "reused": uri in reused, "cache_hits": int(rec.get("cache_hits", 0)),
                    "cache_misses": int(rec.get("cache_misses", 0)), "seconds": rec.get("seconds", {})})
        rows.append(row)
    return SelectionResult(model=config.model, run=config.run, run_uri="", store=config.store,
                           selected=ranking.choice, criterion=criterion, metrics=ranked, extra_metrics=extra,
                           selection="", dataset_version="", table=rows, notes=notes)


def cleanup_dir(path: str) -> None:
    """Remove a temporary folder (Tune's experiment files), ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)


def temp_dir() -> str:
    """A local temporary folder for Tune's experiment files (never the store)."""
    return tempfile.mkdtemp(prefix="breastflow-select-")
