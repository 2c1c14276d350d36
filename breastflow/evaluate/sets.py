"""Evaluate a synthetic image set against a real one: the logic behind ``breastflow evaluate``.

1. Inputs are folders (:func:`breastflow.data.image_sets.load_image_folder`)
   or store selections (:mod:`breastflow.data.selection`), read as
   :class:`~breastflow.data.image_sets.ImageSet`.
2. :func:`evaluate_sets` pairs or labels the sets, runs the requested metrics,
   each looked up by name in :data:`breastflow.evaluate.evaluators.EVALUATORS`,
   per fairness group and the optional memorisation check, and returns one
   flat dict keyed by :mod:`breastflow.metrics.names` plus the objects the
   report plots.

Paired metrics (``mse, mae, psnr, ssim, ms_ssim, lpips``) need ``paired=True``:
the two folders must then hold the same image names; a name present in one
folder only is an error naming it. Set metrics (``fid_img, fid_rad, frd,
nn_accuracy, precision_recall, density_coverage, moments, swd``) compare the
sets as distributions. Nothing is silently skipped: empty sets, NaNs,
unreadable files, shape mismatches and sets too small for a metric are
errors that name the file or the metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from breastflow.data.image_sets import (
    RESIZE_PROTOCOL,
    ImageSet,
    InputError,
    load_image_folder,
)
from breastflow.evaluate.config import PIXELS, EvaluationConfig
from breastflow.evaluate.data_range import DataRange
from breastflow.evaluate.evaluators import (
    EVALUATORS,
    EvaluationContext,
    extractor_windows,
)
from breastflow.metrics.cache import FeatureCache


@dataclass(frozen=True)
class EvaluationResult:
    """Flat metric values plus what the report plots.

    Attributes:
        values: flat dict keyed by :mod:`breastflow.metrics.names` (and derived keys).
        artifacts: ``"moments"`` -> MomentsComparison, ``"swd"`` -> SWDResult,
            ``"paired_per_case"`` -> metric -> ``(N,)`` array, ``"privacy"`` ->
            :class:`breastflow.evaluate.privacy_check.PrivacyCheck`, when computed.
        config: the configuration used.
        real_names: image names of the real set (the pairing order when paired).
        fake_names: image names of the fake set.
        sources: ``"real"``, ``"fake"`` (and ``"train"``, ``"holdout"``) -> folder or selection string.
        notes: what the evaluation decided on the user's behalf (data range, resizing, dropped stack slices).
        fairness: tidy table (:mod:`breastflow.evaluate.groups`), or ``None``.
        cases: one row per real image: its metadata and per-case paired values, or ``None``.
        data_range: the intensity range used, where it came from and the share of
            each set's pixels outside it (:mod:`breastflow.evaluate.data_range`), or ``None``.
    """

    values: dict[str, float]
    artifacts: dict[str, object]
    config: EvaluationConfig
    real_names: tuple[str, ...]
    fake_names: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    fairness: pd.DataFrame | None = None
    cases: pd.DataFrame | None = None
    data_range: DataRange | None = None


def evaluate_sets(real: ImageSet, fake: ImageSet, config: EvaluationConfig, train: ImageSet | None = None,
                  holdout: ImageSet | None = None, *, feature_cache: FeatureCache | None = None,
                  dataset_key: str | None = None) -> EvaluationResult:
    """Compute the configured metrics of ``fake`` against ``real``, per group and the privacy check.

    Args:
        real, fake: the two sets (folders or store selections).
        config: what to compute.
        train, holdout: real images the generator was / was not trained on; both
            given = the memorisation check (:mod:`breastflow.evaluate.privacy_check`).
        feature_cache: cache of the real set's features (Fréchet metrics extract them once
            per real set, extractor, weights, protocol and data range); ``None`` = no cache.
        dataset_key: names the real set's content in the cache key (e.g. its
            :func:`breastflow.data.version.dataset_version` plus the selection string);
            required with ``feature_cache``.

    Raises:
        RegistryError: an unknown metric name (nearest names suggested).
        InputError: a paired metric without ``paired``, mismatched pairs, sets
            too small, an all-zero real set without a data range, more pixels
            outside the data range than allowed (:mod:`breastflow.evaluate.data_range`),
            images of other sizes, a fairness grouping without labels, only one of train / holdout.
    """
    from breastflow.evaluate.data_range import check_clipping, resolve_data_range
    from breastflow.evaluate.groups import (
        breakdown_by_group,
        case_table,
        resolve_groupings,
    )
    from breastflow.evaluate.pairing import inherit_labels, pair_sets

    metric_names = config.resolved_metrics()
    if not metric_names:
        raise InputError("no metrics requested")
    if (train is None) != (holdout is None):
        raise InputError("the memorisation check needs both a training set (--train) and a held-out set (--holdout)")
    evaluators = {m: EVALUATORS.get(m) for m in metric_names}
    paired_needed = [m for m, e in evaluators.items() if e.paired]
    if paired_needed and not config.paired:
        raise InputError(f"metric(s) {paired_needed} compare image pairs; pass --paired (folders with the same file names)")
    notes: list[str] = []
    fake = pair_sets(real, fake, notes) if config.paired else inherit_labels(fake, real)
    windowing = [m for m, e in evaluators.items() if e.windows(config)]
    privacy_windows = train is not None and config.privacy_features != PIXELS and \
        extractor_windows(config.privacy_features, config)
    if privacy_windows:
        windowing.append("the memorisation check")
    needed = any(e.needs_data_range for e in evaluators.values()) or bool(windowing) or train is not None
    sets = {"real": real, "fake": fake} if train is None or holdout is None else \
        {"real": real, "fake": fake, "train": train, "holdout": holdout}
    range_info = check_clipping(resolve_data_range(real, config, needed), sets, tuple(windowing), config, notes)
    data_range = range_info.value
    if config.resize is not None:
        notes.append(f"distribution metrics on images resized to {config.resize}x{config.resize} ({RESIZE_PROTOCOL}); "
                     "paired metrics at native size")
    groupings = resolve_groupings(config.by, real, fake)
    ctx = EvaluationContext(real=real, fake=fake, config=config, data_range=data_range, feature_cache=feature_cache,
                            dataset_key=dataset_key)
    values: dict[str, float] = {"n_real": float(len(real)), "n_fake": float(len(fake))}
    if data_range is not None:
        values["data_range"] = data_range
        values.update({f"clipped_share_{name}": share for name, share in range_info.clipped_share.items()})
    by_metric: dict[str, dict[str, float]] = {}
    for metric, evaluator in evaluators.items():
        by_metric[metric] = evaluator.compute(ctx)
        values.update(by_metric[metric])
    fairness = None
    if groupings:
        set_metrics = {m: e for m, e in evaluators.items() if not e.paired}
        fairness = breakdown_by_group(ctx, set_metrics, groupings, by_metric)
    sources = {"real": real.source, "fake": fake.source}
    if train is not None and holdout is not None:
        from breastflow.evaluate.privacy_check import privacy_check

        check = privacy_check(train, holdout, fake, config, data_range, ctx)
        ctx.artifacts["privacy"] = check
        values.update(check.values())
        sources.update(train=train.source, holdout=holdout.source)
    return EvaluationResult(values=values, artifacts=ctx.artifacts, config=config, real_names=real.names,
                            fake_names=fake.names, sources=sources, notes=tuple(notes), fairness=fairness,
                            cases=case_table(ctx), data_range=range_info)


def evaluate_folders(real_dir: str | Path, fake_dir: str | Path, config: EvaluationConfig) -> EvaluationResult:
    """Load both folders and :func:`evaluate_sets`."""
    return evaluate_sets(load_image_folder(real_dir, "real"), load_image_folder(fake_dir, "fake"), config)


def evaluate_inputs(real: str, fake: str, config: EvaluationConfig, train: str | None = None,
                    holdout: str | None = None) -> EvaluationResult:
    """Load folders or store selections (:func:`breastflow.data.selection_loading.load_input`), then
    :func:`evaluate_sets`.

    Raises:
        InputError: see :func:`evaluate_sets` and :func:`breastflow.data.selection_loading.load_selection`.
    """
    from breastflow.data.selection_loading import load_input

    if (train is None) != (holdout is None):
        raise InputError("the memorisation check needs both --train and --holdout")
    return evaluate_sets(load_input(real, "real"), load_input(fake, "fake"), config,
                         None if train is None else load_input(train, "train"),
                         None if holdout is None else load_input(holdout, "holdout"))
