"""Any metric, broken down by subgroup (vendor, field strength, lesion class ...).

A metric that looks fine on average can hide a subgroup where the generator
fails. :func:`metric_by_group` evaluates a metric function on every subgroup
of a case table and returns one tidy row per (grouping, group, metric).
Groups smaller than ``min_group_size`` get ``value = NaN`` and a status
saying so instead of a number from two samples; missing group labels form
their own, visible group ``"<missing>"``.

The metric function receives the sub-table of the group's rows, so the table
can carry per-case values (``lambda t: t["ssim"].mean()``) or indices into
image arrays (``lambda t: fid(real[t.idx], fake[t.idx])``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

MISSING_GROUP = "<missing>"
ALL_GROUP = "<all>"
STATUS_OK = "ok"
TIDY_COLUMNS = ["grouping", "group", "n", "metric", "value", "status"]

GroupMetric = Callable[[pd.DataFrame], float | Mapping[str, float]]


def mean_of(column: str) -> GroupMetric:
    """Metric function: mean of a per-case column, with its SD as ``<column>_sd``."""

    def metric(rows: pd.DataFrame) -> dict[str, float]:
        values = rows[column].to_numpy(dtype=np.float64)
        return {column: float(values.mean()), f"{column}_sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan")}

    return metric


def _as_dict(value: float | Mapping[str, float], name: str) -> dict[str, float]:
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return {name: float(value)}


def metric_by_group(
    table: pd.DataFrame,
    groupings: Sequence[str | tuple[str, ...]],
    metric: GroupMetric,
    metric_name: str = "value",
    min_group_size: int = 10,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Evaluate ``metric`` on each subgroup of ``table``.

    Args:
        table: one row per case; holds the grouping columns and whatever the
            metric needs.
        groupings: column names (``"vendor"``) or tuples of names for
            intersections (``("vendor", "field_strength")``).
        metric: function of a sub-table returning a float or a flat dict of floats.
        metric_name: name of the metric when ``metric`` returns a bare float.
        min_group_size: groups with fewer rows get NaN and a "too small" status.
        include_overall: add the ``"<all>"`` row(s) computed on the whole table.

    Returns:
        Tidy frame with columns ``grouping, group, n, metric, value, status``;
        ``grouping`` is the column name (``"a&b"`` for intersections) and
        ``group`` the label (``"GE&1.5"``).

    Raises:
        KeyError: naming a grouping column missing from ``table``.
        ValueError: if ``table`` is empty or ``min_group_size < 1``.
    """
    if len(table) == 0:
        raise ValueError("the case table is empty")
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be >= 1, got {min_group_size}")
    rows: list[dict[str, object]] = []
    metric_names: list[str] = []

    def evaluate(grouping: str, group: str, sub: pd.DataFrame) -> None:
        n = len(sub)
        if n < min_group_size:
            rows.append({"grouping": grouping, "group": group, "n": n, "metric": None, "value": np.nan,
                         "status": f"too small: n={n} < min_group_size={min_group_size}"})
            return
        values = _as_dict(metric(sub), metric_name)
        for name in values:
            if name not in metric_names:
                metric_names.append(name)
        for name, value in values.items():
            rows.append({"grouping": grouping, "group": group, "n": n, "metric": name, "value": value, "status": STATUS_OK})

    if include_overall:
        evaluate(ALL_GROUP, ALL_GROUP, table)
    for grouping in groupings:
        cols = (grouping,) if isinstance(grouping, str) else tuple(grouping)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise KeyError(f"grouping column(s) {missing} not in the case table (columns: {list(table.columns)})")
        labels = table[list(cols)].astype(object).where(table[list(cols)].notna(), MISSING_GROUP).astype(str)
        key = labels.agg("&".join, axis=1)
        for group in sorted(key.unique()):
            evaluate("&".join(cols), group, table[key == group])
    # A too-small group has no metric values; expand it to one row per metric name.
    expanded = []
    for row in rows:
        if row["metric"] is None:
            expanded.extend({**row, "metric": name} for name in (metric_names or [metric_name]))
        else:
            expanded.append(row)
    return pd.DataFrame(expanded, columns=TIDY_COLUMNS)
