"""Scaled Aggregate Measure (SAMe) for choosing a generator checkpoint (paper 003, Sec. 3.3.3).

Input is a table of candidates (rows, e.g. checkpoints) x raw metric values
(columns named as :mod:`breastflow.metrics.names` spells them). For every
metric ``m`` and candidate ``c``:

    s[c, m] = (x[c, m] - min_c x[., m]) / (max_c x[., m] - min_c x[., m])
    s[c, m] = 1 - s[c, m]                  if m is higher-is-better (SSIM, PSNR ...)
    s[c, m] = 0                            if m is constant over the candidates
    SAMe[c] = sum_m w[m] s[c, m] / sum_m w[m]

so every scaled metric lies in ``[0, 1]`` with 0 the best candidate. A metric
is constant when ``max - min <= atol + rtol * max(|max|, |min|)``
(:data:`CONSTANT_RTOL`, :data:`CONSTANT_ATOL`), not only when all values are
equal: values one rounding step apart (0.3 vs 0.30000000000000004) would
otherwise be scaled to 0 and 1 and decide the choice. The tolerance is
recorded in the result. The
lowest SAMe wins; SAMe values within ``TIE_TOLERANCE`` of the minimum tie and
the earliest such candidate wins. Scaled values depend on the whole
candidate set (adding a candidate can change all of them), so the result
always keeps the raw table next to the scaled one.

The paper averages FID_Img, FID_Rad, SSIM, MSE and MAE unweighted; those are
the defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from breastflow.metrics import names

DEFAULT_SAME_METRICS: tuple[str, ...] = (names.FID_IMG, names.FID_RAD, names.SSIM, names.MSE, names.MAE)
#: SAMe values closer than this to the minimum count as tied (floating-point noise).
TIE_TOLERANCE = 1e-12
#: Default relative / absolute tolerance under which a metric counts as constant over the candidates.
CONSTANT_RTOL = 1e-9
CONSTANT_ATOL = 1e-12


def metric_direction_known(metric: str) -> bool:
    """Whether SAMe knows if larger or smaller values of ``metric`` are better."""
    return metric in names.HIGHER_IS_BETTER or metric in names.LOWER_IS_BETTER


@dataclass(frozen=True)
class SameResult:
    """SAMe of every candidate.

    Attributes:
        raw: ``(candidates, metrics)`` the raw values used, in input order.
        scaled: same shape, scaled to ``[0, 1]`` with 0 = best.
        same: SAMe per candidate (index = candidate names).
        choice: name of the winning candidate.
        weights: metric -> normalised weight (sums to 1).
        constant_metrics: metrics equal for all candidates within the tolerance (scaled to 0).
        constant_rtol, constant_atol: that tolerance.
    """

    raw: pd.DataFrame
    scaled: pd.DataFrame
    same: pd.Series
    choice: str
    weights: dict[str, float]
    constant_metrics: tuple[str, ...]
    constant_rtol: float = CONSTANT_RTOL
    constant_atol: float = CONSTANT_ATOL

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict: choice, per-candidate SAMe, raw and scaled tables, weights, constants."""
        return {
            "choice": self.choice,
            "same": {str(k): float(v) for k, v in self.same.items()},
            "raw": {str(c): {m: float(v) for m, v in row.items()} for c, row in self.raw.iterrows()},
            "scaled": {str(c): {m: float(v) for m, v in row.items()} for c, row in self.scaled.iterrows()},
            "weights": dict(self.weights),
            "constant_metrics": list(self.constant_metrics),
            "constant_tolerance": {"rtol": self.constant_rtol, "atol": self.constant_atol},
            "higher_is_better": [m for m in self.raw.columns if m in names.HIGHER_IS_BETTER],
        }


def _resolve_weights(metrics: Sequence[str], weights: Mapping[str, float] | Sequence[float] | None) -> dict[str, float]:
    if weights is None:
        raw = {m: 1.0 for m in metrics}
    elif isinstance(weights, Mapping):
        unknown = [m for m in weights if m not in metrics]
        if unknown:
            raise ValueError(f"weights given for metric(s) {unknown} that are not ranked (metrics: {list(metrics)})")
        raw = {m: float(weights.get(m, 1.0)) for m in metrics}
    else:
        if len(weights) != len(metrics):
            raise ValueError(f"{len(weights)} weights for {len(metrics)} metrics {list(metrics)}; give one weight per metric")
        raw = {m: float(w) for m, w in zip(metrics, weights, strict=True)}
    for m, w in raw.items():
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"weight of metric {m!r} must be finite and >= 0, got {w}")
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("at least one weight must be positive")
    return {m: w / total for m, w in raw.items()}


def same_score(
    table: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    constant_rtol: float = CONSTANT_RTOL,
    constant_atol: float = CONSTANT_ATOL,
) -> SameResult:
    """Compute SAMe over the candidates of ``table`` and pick the best.

    Args:
        table: one row per candidate, index = candidate names (unique), one
            numeric column per metric; extra columns are ignored.
        metrics: the metric columns to aggregate; default
            :data:`DEFAULT_SAME_METRICS`.
        weights: per-metric weights, a mapping (missing metrics weigh 1) or a
            sequence aligned with ``metrics``; default unweighted.
        constant_rtol, constant_atol: a metric whose ``max - min`` is at most
            ``constant_atol + constant_rtol * max(|max|, |min|)`` counts as
            constant and is scaled to 0 for every candidate.

    Returns:
        :class:`SameResult`.

    Raises:
        ValueError: if the table has no rows, candidate names repeat, a
            metric name is unknown (no direction), a metric column is missing
            from the table, holds NaN / non-numeric values, a weight or a
            tolerance is negative.
    """
    if not (constant_rtol >= 0 and constant_atol >= 0):
        raise ValueError(f"constant_rtol and constant_atol must be >= 0, got {constant_rtol}, {constant_atol}")
    metrics = list(DEFAULT_SAME_METRICS if metrics is None else metrics)
    if not metrics:
        raise ValueError("no metrics to aggregate")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metric listed twice in {metrics}")
    unknown = [m for m in metrics if not metric_direction_known(m)]
    if unknown:
        known = sorted(names.HIGHER_IS_BETTER | names.LOWER_IS_BETTER)
        raise ValueError(f"unknown metric name(s) {unknown}: SAMe needs to know whether higher or lower is better; known: {known}")
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ValueError(f"metric column(s) {missing} missing from the candidate table (columns: {list(table.columns)})")
    if len(table) == 0:
        raise ValueError("the candidate table has no rows")
    if table.index.has_duplicates:
        dups = table.index[table.index.duplicated()].unique().tolist()
        raise ValueError(f"candidate name(s) {dups} appear more than once")
    raw = pd.DataFrame(index=table.index)
    for m in metrics:
        col = pd.to_numeric(table[m], errors="coerce")
        bad = table.index[col.isna() | ~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))].tolist()
        if bad:
            raise ValueError(f"metric column {m!r} has missing, non-numeric or infinite values for candidate(s) {bad}")
        raw[m] = col.astype(np.float64)
    w = _resolve_weights(metrics, weights)

    scaled = pd.DataFrame(index=raw.index, columns=metrics, dtype=np.float64)
    constant = []
    for m in metrics:
        x = raw[m].to_numpy()
        lo, hi = x.min(), x.max()
        if hi - lo <= constant_atol + constant_rtol * max(abs(hi), abs(lo)):
            constant.append(m)
            scaled[m] = 0.0
            continue
        s = (x - lo) / (hi - lo)
        scaled[m] = 1.0 - s if m in names.HIGHER_IS_BETTER else s
    values = np.zeros(len(raw))
    for m in metrics:  # fixed metric order: a candidate's SAMe does not depend on row order
        values = values + w[m] * scaled[m].to_numpy()
    same = pd.Series(values, index=raw.index, name=names.SAME)
    best = int(np.flatnonzero(values <= values.min() + TIE_TOLERANCE)[0])
    return SameResult(
        raw=raw,
        scaled=scaled,
        same=same,
        choice=str(raw.index[best]),
        weights=w,
        constant_metrics=tuple(constant),
        constant_rtol=float(constant_rtol),
        constant_atol=float(constant_atol),
    )


def read_candidate_table(path: str | Path) -> pd.DataFrame:
    """Read a SAMe CSV: first column = candidate name, other columns = metric names.

    Raises:
        ValueError: naming the file when it is empty, has no metric columns
            or no rows, or the candidate names are missing.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV table ({err})") from err
    if table.shape[1] < 2:
        raise ValueError(f"{path}: needs a candidate-name column and at least one metric column, got {list(table.columns)}")
    if len(table) == 0:
        raise ValueError(f"{path}: no candidate rows")
    first = table.columns[0]
    if table[first].isna().any():
        raise ValueError(f"{path}: candidate name missing in row(s) {table.index[table[first].isna()].tolist()}")
    table = table.set_index(table[first].astype(str)).drop(columns=[first])
    table.index.name = str(first)
    table.columns = [str(c).strip() for c in table.columns]
    return table
