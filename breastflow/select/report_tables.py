"""The numbers of the synthesis report (:mod:`breastflow.select.report`): Table 2, lesion boxes, kinetics, vendors.

Every comparison is paired (by ``(study, slice)``), on the per-case scale of the
selection (``scale=per-case``: each study divided by its pre-contrast 99th
percentile, so enhancement between phases is kept) and on the selection's lesion
slices, as paper 003's Table 2:

* ``synthetic``: real post vs synthetic post (the selected checkpoint);
* ``baseline``: real post vs real pre (the paper's "Real DCE vs. Real Pre" upper-bound baseline);
* ``subtraction``: real post - pre vs synthetic post - pre, negative values clipped to 0 as in the paper.

Each row is one :func:`breastflow.evaluate.sets.evaluate_sets` call whose
configuration is kept with the row (``config``), so the numbers can be
recomputed independently. A metric that cannot run on the sets (too few
images, missing weights) is left out of that row with a note naming its error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from breastflow.data.image_sets import ImageSet, InputError
from breastflow.data.selection import StoreSelection
from breastflow.evaluate.config import EvaluationConfig
from breastflow.evaluate.evaluators import EVALUATORS
from breastflow.evaluate.sets import EvaluationResult, evaluate_sets
from breastflow.metrics import names
from breastflow.metrics.cache import FeatureCache
from breastflow.store.fs import StoreLocation

#: Paired metrics every Table 2 row gets, whatever the selection used.
BASE_METRICS: tuple[str, ...] = (names.MSE, names.MAE, names.PSNR, names.SSIM)
PRE = "pre"
#: Keys of an evaluation's values that are bookkeeping rather than metrics.
_NOT_METRICS = ("n_real", "n_fake", "data_range")


@dataclass(frozen=True)
class ComparisonSets:
    """The paired sets of one target phase on the report's split (same names, same order)."""

    target: str
    real_post: ImageSet
    real_pre: ImageSet
    synthetic: ImageSet


def table2_metrics(selected_metrics: Sequence[str], notes: list[str]) -> tuple[str, ...]:
    """The selection's metrics that are evaluation metrics, plus :data:`BASE_METRICS`, in a stable order.

    Lesion-box variants (``roi_*``) are covered by the lesion-box table; any other
    name that is not an evaluation metric is left out with a note.
    """
    out: list[str] = []
    skipped: list[str] = []
    for metric in [*selected_metrics, *BASE_METRICS]:
        if metric in out or metric == names.SAME or metric in names.ROI_METRICS.values():
            continue
        if metric not in EVALUATORS:
            skipped.append(metric)
            continue
        out.append(metric)
    if skipped:
        notes.append(f"Table 2: selection metric(s) {', '.join(repr(m) for m in skipped)} are not evaluation "
                     "metrics here; left out")
    return tuple(out)


def base_config(metric_config: dict, metrics: tuple[str, ...], device: str, sets: ComparisonSets) -> EvaluationConfig:
    """The evaluation configuration of every Table 2 row: the selection's metric config, paired, no groups.

    Fields of ``metric_config["evaluation"]`` (or of ``metric_config`` itself) that are :class:`EvaluationConfig` fields are kept
    (weights, protocol, data range ...); ``resize`` is set to the largest image side
    when the images differ in size (distribution metrics need one size).
    """
    settings = (metric_config or {}).get("evaluation", metric_config or {})  # selected.json nests it
    fields = {k: v for k, v in settings.items() if k in EvaluationConfig.model_fields}
    shapes = {img.shape for img in sets.real_post.images}
    if len(shapes) > 1 and fields.get("resize") is None:
        fields["resize"] = max(max(s) for s in shapes)
    fields.update(metrics=metrics, paired=True, by=(), device=device)
    return EvaluationConfig.model_validate(fields)


def load_sets(selection: StoreSelection, split: str, target: str, synthetic: str) -> ComparisonSets:
    """Real post, real pre and synthetic post of ``split`` with the selection's filters, checked to pair.

    Raises:
        InputError: the three sets do not hold the same slices.
    """
    from breastflow.data.selection_loading import load_selection
    from breastflow.store.splits import Split

    base = selection.model_copy(update={"splits": (Split(split),), "synthetic": None, "series": target})
    real_post = load_selection(base, "real")
    real_pre = load_selection(base.model_copy(update={"series": PRE}), "real pre-contrast")
    fake = load_selection(base.model_copy(update={"synthetic": synthetic}), "synthetic")
    for what, other in (("pre-contrast", real_pre), ("synthetic", fake)):
        if other.names != real_post.names:
            raise InputError(f"{split} split: the {what} selection {other.source} holds other slices than "
                             f"{real_post.source}; the report needs every {target} slice's counterpart")
    return ComparisonSets(target=target, real_post=real_post, real_pre=real_pre, synthetic=fake)


def selection_baseline(selection: StoreSelection, metrics: tuple[str, ...], metric_config: dict, device: str,
                       notes: list[str], cache: FeatureCache | None = None) -> dict | None:
    """Table 1's last row (paper 003): real post vs real pre on the selection's own slices, the selection's metrics.

    Returns:
        ``{"comparison", "dataset", "n", "values", "config"}``, or ``None`` (with a note) when it cannot be computed.
    """
    from breastflow.data.selection_loading import load_selection

    base = selection.model_copy(update={"synthetic": None})
    try:
        post = load_selection(base, "real")
        pre = load_selection(base.model_copy(update={"series": PRE}), "real pre-contrast")
        sets = ComparisonSets(target=selection.series, real_post=post, real_pre=pre, synthetic=pre)
        config = base_config(metric_config, metrics, device, sets)
        result, used = _evaluate(post, pre, config, "Table 1, baseline row", notes, cache)
    except (InputError, OSError, RuntimeError) as err:
        notes.append(f"Table 1: the real pre vs real post baseline row could not be computed ({err})")
        return None
    dataset = ",".join(s.value for s in selection.splits) if selection.splits else "all"
    return {"comparison": f"Real {selection.series} vs. Real pre", "dataset": dataset, "n": len(post),
            "values": metric_values(result), "config": used.model_dump(mode="json")}


def subtraction(post: ImageSet, pre: ImageSet, label: str) -> ImageSet:
    """``max(post - pre, 0)`` per image (paper 003's subtraction images), with ``post``'s names and metadata."""
    images = tuple(np.clip(np.asarray(a, np.float64) - np.asarray(b, np.float64), 0.0, None)
                   for a, b in zip(post.images, pre.images, strict=True))
    return ImageSet(source=f"{label}: ({post.source}) - ({pre.source}), clipped at 0", names=post.names,
                    images=images, meta=post.meta)


#: What a metric that cannot run on the sets raises (too few images, missing weights, a network failing).
_METRIC_FAILURES = (InputError, OSError, RuntimeError, ValueError)


def real_key(real: ImageSet) -> str:
    """Content key of a real set for the feature cache: sha256 of its image names, shapes and pixels."""
    digest = hashlib.sha256()
    for name, image in zip(real.names, real.images, strict=True):
        array = np.ascontiguousarray(image)
        digest.update(f"{name}|{array.shape}|{array.dtype}|".encode())
        digest.update(array.tobytes())
    return "pixels:" + digest.hexdigest()


def _evaluate(real: ImageSet, fake: ImageSet, config: EvaluationConfig, label: str,
              notes: list[str], cache: FeatureCache | None = None) -> tuple[EvaluationResult, EvaluationConfig]:
    """One ``evaluate_sets`` call; when it fails, each metric alone finds the ones that cannot run, which are
    left out with a note, and the row is computed again with the others (still one call, one configuration).

    ``cache``: real-set features by content (:func:`real_key`), so a real set compared twice
    (synthetic and pre-contrast against the same real post) runs the network once.

    Raises:
        InputError: no metric can run on the sets (the first error).
    """
    cached = {} if cache is None else {"feature_cache": cache, "dataset_key": real_key(real)}
    try:
        return evaluate_sets(real, fake, config, **cached), config
    except _METRIC_FAILURES as err:
        first = err
    metrics = config.resolved_metrics()
    failed: dict[str, str] = {}
    for metric in metrics:
        try:
            evaluate_sets(real, fake, config.model_copy(update={"metrics": (metric,), "by": ()}))
        except _METRIC_FAILURES as err:
            failed[metric] = f"{type(err).__name__}: {err}"
    kept = tuple(m for m in metrics if m not in failed)
    if not failed or not kept:
        raise first
    for metric, error in failed.items():
        notes.append(f"{label}: {metric} left out ({error})")
    used = config.model_copy(update={"metrics": kept})
    return evaluate_sets(real, fake, used, **cached), used


def metric_values(result: EvaluationResult) -> dict[str, float]:
    """The metric values of an evaluation (bookkeeping keys left out)."""
    return {k: float(v) for k, v in result.values.items()
            if k not in _NOT_METRICS and not k.startswith("clipped_share_")}


def comparison_rows(sets: ComparisonSets, config: EvaluationConfig, synthetic_label: str, split: str,
                    notes: list[str], cache: FeatureCache | None = None) -> tuple[list[dict], dict[str, EvaluationResult]]:
    """Table 2's three rows of one target phase and their evaluation results (keys ``synthetic``, ``baseline``,
    ``subtraction``)."""
    t = sets.target
    real_sub = subtraction(sets.real_post, sets.real_pre, "real subtraction")
    fake_sub = subtraction(sets.synthetic, sets.real_pre, "synthetic subtraction")
    by = ("vendor",) if sets.real_post.meta is not None and sets.real_post.meta["vendor"].notna().any() else ()
    plan = (("synthetic", f"Real {t} vs. {synthetic_label} {t}", sets.real_post, sets.synthetic, by),
            ("baseline", f"Real {t} vs. Real pre", sets.real_post, sets.real_pre, by),
            ("subtraction", f"Real subt vs. {synthetic_label} subt ({t})", real_sub, fake_sub, ()))
    rows, results = [], {}
    for kind, label, real, fake, groups in plan:
        result, used = _evaluate(real, fake, config.model_copy(update={"by": groups}), f"Table 2, {label}", notes,
                                 cache)
        results[kind] = result
        rows.append({"comparison": label, "kind": kind, "target": t, "dataset": split, "n": len(real),
                     "values": metric_values(result), "data_range": result.values.get("data_range"),
                     "config": used.model_dump(mode="json"), "notes": list(result.notes)})
    return rows, results


def lesion_box_rows(sets: ComparisonSets, loc: StoreLocation, split: str) -> list[dict]:
    """MAE / MSE over the lesion-box voxels of the selected slices, per study, then mean and SD over studies.

    The boxes are the committed ones (:func:`breastflow.generate.compare.lesion_region`,
    inclusive, pre-contrast grid); slices of the margin outside every box add no voxel.
    """
    from breastflow.generate.compare import lesion_region
    from breastflow.store.zarr_io import open_series_array

    meta = sets.real_post.meta
    regions: dict[str, np.ndarray] = {}
    pairs = {"synthetic": (sets.real_post, sets.synthetic), "baseline": (sets.real_post, sets.real_pre),
             "subtraction": (subtraction(sets.real_post, sets.real_pre, "real"),
                             subtraction(sets.synthetic, sets.real_pre, "synthetic"))}
    rows = []
    for kind, (real, fake) in pairs.items():
        errors: dict[str, list[np.ndarray]] = {}
        for i, (study, z) in enumerate(zip(meta["study"], meta["slice"], strict=True)):
            if study not in regions:
                shape = tuple(open_series_array(loc, study, sets.target).shape)
                regions[study] = lesion_region(loc, study, shape)
            box = regions[study][int(z)]
            if box.any():
                diff = np.asarray(fake.images[i], np.float64)[box] - np.asarray(real.images[i], np.float64)[box]
                errors.setdefault(study, []).append(diff)
        per_study = {s: np.concatenate(d) for s, d in errors.items()}
        mae = np.array([np.abs(d).mean() for d in per_study.values()])
        mse = np.array([(d ** 2).mean() for d in per_study.values()])
        rows.append({"kind": kind, "target": sets.target, "dataset": split, "studies": len(per_study),
                     "voxels": int(sum(d.size for d in per_study.values())),
                     "mae": float(mae.mean()) if mae.size else float("nan"),
                     "mae_sd": float(mae.std()) if mae.size else float("nan"),
                     "mse": float(mse.mean()) if mse.size else float("nan"),
                     "mse_sd": float(mse.std()) if mse.size else float("nan")})
    return rows


def vendor_rows(results: dict[str, EvaluationResult], labels: dict[str, str]) -> list[dict]:
    """Per-vendor Table 2 values (per-case metrics as mean and SD; set metrics where the group is large enough)."""
    rows = []
    for kind, result in results.items():
        frame = result.fairness
        if frame is None or frame.empty:
            continue
        frame = frame[frame.grouping == "vendor"]
        for group, part in frame.groupby("group", sort=True):
            values = {str(m): (None if pd.isna(v) else float(v)) for m, v in zip(part.metric, part.value, strict=True)}
            status = sorted({s for s in part.status if s != "ok"})
            rows.append({"comparison": labels[kind], "kind": kind, "vendor": str(group),
                         "n": int(part.n_real.max()), "values": values, "status": "; ".join(status) or "ok"})
    return rows


def kinetics_analysis(loc: StoreLocation, synthetic: str, studies: Sequence[str], targets: Sequence[str]):
    """Per-lesion mean intensity over phases (pre, then ``targets``), real vs synthetic (paper 003 Fig 7/8).

    One case per committed lesion box of each study; the synthetic series are the
    generated ``targets``, phase 0 the real pre-contrast image both curves share;
    one scale per case (:mod:`breastflow.metrics.kinetics`).

    Returns:
        :class:`breastflow.metrics.kinetics.KineticsResult`, or ``None`` when no study has a lesion box.
    """
    from breastflow.generate.compare import read_physical
    from breastflow.generate.synthetic import synthetic_location
    from breastflow.metrics.kinetics import (
        BoundingBox,
        KineticsCase,
        KineticsConfig,
        analyse_kinetics,
    )
    from breastflow.store.annotation_commit import read_annotation_commit

    sloc = synthetic_location(loc, synthetic)
    cases = []
    for study in studies:
        record = read_annotation_commit(loc, study)
        boxes = [b for b in (record.boxes if record is not None else ()) if b.start_slice is not None]
        if not boxes:
            continue
        pre = read_physical(loc, study, PRE)
        real = np.stack([pre, *(read_physical(loc, study, t) for t in targets)])
        fake = np.stack([pre, *(read_physical(sloc, study, t) for t in targets)])
        for box in boxes:
            stop = np.minimum((box.end_slice + 1, box.end_row + 1, box.end_column + 1), pre.shape)
            cases.append(KineticsCase(case_id=f"{study}/l{box.lesion_id}", real=real, fake=fake,
                                      bbox=BoundingBox((box.start_slice, box.start_row, box.start_column),
                                                       tuple(int(v) for v in stop))))
    if not cases:
        return None
    return analyse_kinetics(cases, KineticsConfig(early_phases=(1,), delayed_phase=-1))


def initial_enhancement(result) -> pd.DataFrame:
    """Per lesion: relative enhancement ``post_1 / pre - 1`` of the lesion mean, real and synthetic."""
    phases = result.phases
    wide = phases.pivot_table(index=["case", "source"], columns="phase", values="mean").reset_index()
    wide["enhancement"] = wide[1] / wide[0] - 1.0
    out = wide.pivot(index="case", columns="source", values="enhancement").reset_index()
    return out.rename(columns={"real": "real", "synthetic": "synthetic"})[["case", "real", "synthetic"]]
