"""Fairness in ``evaluate``: every metric broken down by vendor, field strength and lesion class.

Per-case (paired) metrics are averaged over each group's pairs with
:func:`breastflow.metrics.fairness.metric_by_group` (any group size; the SD is
the population SD, as in the overall summary). Distribution metrics are
recomputed on each group's real and synthetic images, reusing the stacks and
features already computed for the whole sets; a group with fewer than
``min_group_size`` real or synthetic images gets no value and the status
``too small: ...``, and a metric that fails on a group (e.g. too few images
for its own neighbourhood size) gets ``failed: <reason>``, never a silent gap.

Labels: ``vendor`` and ``field_strength`` come from the catalog, ``lesion_class``
is per slice (:mod:`breastflow.data.selection_loading`: the classes of the lesion
boxes that contain the slice, ``none`` for annotated slices outside every box;
missing for studies without annotations, shown as the group ``<missing>``).
Groups of one grouping partition the set, so their ``n_real`` sum to the total.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from breastflow.data.image_sets import ImageSet, InputError
from breastflow.evaluate.evaluators import EvaluationContext, MetricEvaluator
from breastflow.metrics import names
from breastflow.metrics.fairness import (
    ALL_GROUP,
    MISSING_GROUP,
    STATUS_OK,
    metric_by_group,
)

#: Groupings ``evaluate`` knows, in report order.
GROUPINGS = ("vendor", "field_strength", "lesion_class")
COLUMNS = ["kind", "grouping", "group", "n_real", "n_fake", "metric", "value", "status"]
PER_CASE = "per-case"
DISTRIBUTION = "distribution"


def resolve_groupings(by: tuple[str, ...] | None, real: ImageSet, fake: ImageSet) -> tuple[str, ...]:
    """The groupings to report: ``by``, or (``None``) every one of :data:`GROUPINGS` the real set has labels for.

    Raises:
        InputError: an unknown grouping, or a requested one the real set has no labels for.
    """
    if by is not None and not by:
        return ()
    meta = real.meta
    if by is None:
        if meta is None:
            return ()
        return tuple(g for g in GROUPINGS if g in meta.columns and meta[g].notna().any())
    unknown = [g for g in by if g not in GROUPINGS]
    if unknown:
        raise InputError(f"unknown fairness grouping {unknown[0]!r}; choose from {', '.join(GROUPINGS)}")
    if meta is None:
        raise InputError(f"--by {','.join(by)}: the real images in {real.source} carry no labels; "
                         "use a store selection as REAL (folders have no vendor / field strength / lesion class)")
    missing = [g for g in by if g not in meta.columns or meta[g].isna().all()]
    if missing:
        raise InputError(f"--by {missing[0]}: the real selection {real.source} has no {missing[0]} labels"
                         + (" (no committed lesion annotations)" if missing[0] == "lesion_class" else ""))
    return tuple(by)


def case_table(ctx: EvaluationContext) -> pd.DataFrame | None:
    """One row per real image: metadata (or just the name) and its per-case paired values; ``None`` if neither."""
    per_case: dict[str, np.ndarray] = ctx.artifacts.get("paired_per_case") or {}
    if not per_case and ctx.real.meta is None:
        return None
    table = ctx.real.meta.copy() if ctx.real.meta is not None else pd.DataFrame({"name": list(ctx.real.names)})
    if per_case:
        table["fake_name"] = list(ctx.fake.names)
    for metric, values in per_case.items():
        table[metric] = values
    return table.reset_index(drop=True)


def _labels(meta: pd.DataFrame, column: str) -> np.ndarray:
    values = meta[column].astype(object)
    return values.where(values.notna(), MISSING_GROUP).astype(str).to_numpy()


def _per_case_breakdown(table: pd.DataFrame, metrics: list[str], groupings: tuple[str, ...]) -> pd.DataFrame:
    def summary(rows: pd.DataFrame) -> dict[str, float]:
        out = {}
        for metric in metrics:
            values = rows[metric].to_numpy(dtype=np.float64)
            out[metric] = float(values.mean())
            out[names.sd_name(metric)] = float(values.std())
        return out

    tidy = metric_by_group(table, groupings, summary, min_group_size=1)
    return tidy.assign(kind=PER_CASE, n_real=tidy["n"], n_fake=tidy["n"])


def _rows(grouping: str, group: str, n_real: int, n_fake: int, keys: list[str], values: Mapping[str, float] | None,
          status: str) -> list[dict[str, object]]:
    return [{"kind": DISTRIBUTION, "grouping": grouping, "group": group, "n_real": n_real, "n_fake": n_fake,
             "metric": key, "value": float("nan") if values is None else float(values[key]), "status": status}
            for key in keys]


def _distribution_breakdown(ctx: EvaluationContext, evaluators: Mapping[str, MetricEvaluator],
                            groupings: tuple[str, ...], overall: Mapping[str, Mapping[str, float]]) -> list[dict]:
    rows: list[dict[str, object]] = []
    for metric in evaluators:
        rows += _rows(ALL_GROUP, ALL_GROUP, len(ctx.real), len(ctx.fake), list(overall[metric]), overall[metric],
                      STATUS_OK)
    min_size = ctx.config.min_group_size
    for grouping in groupings:
        real_labels = _labels(ctx.real.meta, grouping)
        fake_meta = ctx.fake.meta
        if fake_meta is None or grouping not in fake_meta.columns:
            for group in sorted(set(real_labels)):
                for metric in evaluators:
                    rows += _rows(grouping, group, int((real_labels == group).sum()), 0, list(overall[metric]), None,
                                  f"not computed: the fake set {ctx.fake.source} has no {grouping} labels")
            continue
        fake_labels = _labels(fake_meta, grouping)
        for group in sorted(set(real_labels) | set(fake_labels)):
            real_index = np.flatnonzero(real_labels == group)
            fake_index = np.flatnonzero(fake_labels == group)
            n_real, n_fake = len(real_index), len(fake_index)
            if min(n_real, n_fake) < min_size:
                for metric in evaluators:
                    rows += _rows(grouping, group, n_real, n_fake, list(overall[metric]), None,
                                  f"too small: n_real={n_real}, n_fake={n_fake} < min_group_size={min_size}")
                continue
            sub = ctx.subset(real_index, fake_index)
            for metric, evaluator in evaluators.items():
                try:
                    values = evaluator.compute(sub)
                except ValueError as err:  # InputError and metric input errors
                    rows += _rows(grouping, group, n_real, n_fake, list(overall[metric]), None, f"failed: {err}")
                    continue
                rows += _rows(grouping, group, n_real, n_fake, list(values), values, STATUS_OK)
    return rows


def breakdown_by_group(ctx: EvaluationContext, set_evaluators: Mapping[str, MetricEvaluator],
                       groupings: tuple[str, ...], overall: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Per-case and distribution metrics per group (see the module docstring).

    Args:
        ctx: the evaluation's context after the overall metrics ran (per-case values in its artifacts).
        set_evaluators: the distribution metrics to recompute per group.
        groupings: label columns of ``ctx.real.meta``.
        overall: metric name -> its overall values (the ``<all>`` rows).

    Returns:
        Tidy frame with :data:`COLUMNS`; ``kind`` is ``per-case`` or ``distribution``.
    """
    frames = []
    per_case = list((ctx.artifacts.get("paired_per_case") or {}).keys())
    if per_case:
        frames.append(_per_case_breakdown(case_table(ctx), per_case, groupings))
    if set_evaluators:
        frames.append(pd.DataFrame(_distribution_breakdown(ctx, set_evaluators, groupings, overall)))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat([f[COLUMNS] for f in frames], ignore_index=True)
