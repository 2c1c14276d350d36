"""Contrast kinetics in the lesion, real vs synthetic (paper 003, Sec. 4.3, Fig. 7 and 8).

For every case and phase the mean and SD of the intensity inside the lesion
bounding box (all tumour-containing slices) are measured on the real and on
the synthetic series. Intensities are divided by one number per case, the
mean of the real *pre-contrast* image inside a reference mask (breast / FGT
mask; all voxels > 0 when none is given). One common per-case scale keeps
the enhancement between phases, which per-phase min-max scaling (the
reference pipeline's) destroys.

Each curve is classified as in BI-RADS MRI: the delayed-phase signal is
compared with the early peak (maximum over the early post-contrast phases);
a rise of more than ``threshold`` (10 %) is *persistent*, a fall of more than
10 % *washout*, anything in between *plateau*. Agreement between the real
and synthetic curve types is reported as accuracy and Cohen's kappa, plus
the share of cases whose phase-to-phase ordering of mean intensity matches.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from breastflow.metrics import names
from breastflow.vocabulary import CurveType


class Source(str, enum.Enum):
    REAL = "real"
    FAKE = "synthetic"


@dataclass(frozen=True)
class BoundingBox:
    """Half-open box ``[start, stop)`` per spatial axis, e.g. ``(z, y, x)``."""

    start: tuple[int, ...]
    stop: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.start) != len(self.stop) or any(b <= a for a, b in zip(self.start, self.stop, strict=True)):
            raise ValueError(f"empty or malformed bounding box start={self.start} stop={self.stop}")

    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))


@dataclass(frozen=True)
class KineticsCase:
    """One case's real and synthetic series.

    Attributes:
        case_id: pseudonymous case identifier (never a patient ID).
        real: ``(P, *spatial)`` real series; phase 0 is pre-contrast.
        fake: ``(P, *spatial)`` synthetic series; phase 0 is usually the real
            pre-contrast image the generator was given.
        bbox: lesion bounding box over the spatial axes.
        reference_mask: ``(*spatial)`` bool breast / FGT mask for the scale;
            ``None`` = voxels of the real pre-contrast image above 0.
    """

    case_id: str
    real: np.ndarray
    fake: np.ndarray
    bbox: BoundingBox
    reference_mask: np.ndarray | None = None


@dataclass(frozen=True)
class KineticsConfig:
    """Curve-type rule: early peak over ``early_phases``, delayed phase ``delayed_phase``."""

    early_phases: tuple[int, ...] = (1,)
    delayed_phase: int = -1
    threshold: float = 0.10

    def __post_init__(self) -> None:
        if not self.early_phases:
            raise ValueError("early_phases must name at least one phase")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")


def _case_reference(case: KineticsCase) -> float:
    pre = np.asarray(case.real[0], dtype=np.float64)
    mask = pre > 0 if case.reference_mask is None else np.asarray(case.reference_mask, dtype=bool)
    if mask.shape != pre.shape:
        raise ValueError(f"case {case.case_id}: reference mask {mask.shape} != image {pre.shape}")
    if not mask.any():
        raise ValueError(f"case {case.case_id}: reference mask selects no voxel")
    ref = float(pre[mask].mean())
    if not ref > 0:
        raise ValueError(f"case {case.case_id}: pre-contrast reference mean is {ref}; needs a positive scale")
    return ref


def lesion_phase_table(cases: Sequence[KineticsCase]) -> pd.DataFrame:
    """Mean and SD of the scaled intensity in the lesion box, per case, source and phase.

    Returns:
        Columns ``case, source, phase, mean, sd, reference``.

    Raises:
        ValueError: naming the case when series shapes disagree, the box lies
            outside the image, or values are not finite.
    """
    if not cases:
        raise ValueError("no kinetics cases given")
    rows = []
    for case in cases:
        real, fake = np.asarray(case.real), np.asarray(case.fake)
        if real.shape != fake.shape or real.ndim < 2:
            raise ValueError(f"case {case.case_id}: real {real.shape} and synthetic {fake.shape} series must be equal (P, *spatial)")
        spatial = real.shape[1:]
        if len(case.bbox.start) != len(spatial) or any(b > s for b, s in zip(case.bbox.stop, spatial, strict=True)) or min(case.bbox.start) < 0:
            raise ValueError(f"case {case.case_id}: bounding box {case.bbox} outside image {spatial}")
        ref = _case_reference(case)
        box = (slice(None),) + case.bbox.slices()
        for source, series in ((Source.REAL, real), (Source.FAKE, fake)):
            roi = np.asarray(series[box], dtype=np.float64).reshape(series.shape[0], -1) / ref
            if not np.isfinite(roi).all():
                raise ValueError(f"case {case.case_id}: {source.value} series has NaN / infinite values in the box")
            for phase in range(series.shape[0]):
                rows.append({"case": case.case_id, "source": source.value, "phase": phase,
                             "mean": roi[phase].mean(), "sd": roi[phase].std(), "reference": ref})
    return pd.DataFrame(rows)


def classify_curve(means: np.ndarray, config: KineticsConfig = KineticsConfig()) -> CurveType:
    """BI-RADS curve type from per-phase mean intensities ``(P,)``.

    Raises:
        ValueError: if the early peak is not positive.
    """
    means = np.asarray(means, dtype=np.float64)
    early = means[list(config.early_phases)].max()
    if not early > 0:
        raise ValueError(f"early peak intensity {early} must be positive")
    delayed = means[config.delayed_phase]
    # delayed vs early * (1 +- t) rather than (delayed - early) / early vs t: a change of
    # exactly 10 % written in decimals (2.0 -> 2.2) stays on the plateau side
    if delayed > early * (1.0 + config.threshold):
        return CurveType.PERSISTENT
    if delayed < early * (1.0 - config.threshold):
        return CurveType.WASHOUT
    return CurveType.PLATEAU


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two labelings; NaN when chance agreement is 1 (one class only)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("kappa needs two equal-length, non-empty labelings")
    labels = np.union1d(a, b)
    p_o = float((a == b).mean())
    p_e = float(sum((a == k).mean() * (b == k).mean() for k in labels))
    return float("nan") if p_e == 1.0 else (p_o - p_e) / (1.0 - p_e)


@dataclass(frozen=True)
class KineticsResult:
    """Per-case table, dataset summary, curve types and agreement."""

    phases: pd.DataFrame
    dataset: pd.DataFrame
    curves: pd.DataFrame
    accuracy: float
    kappa: float
    order_agreement: float
    config: KineticsConfig = field(default_factory=KineticsConfig)

    def to_dict(self) -> dict[str, float]:
        return {
            names.KINETICS_CURVE_ACCURACY: self.accuracy,
            names.KINETICS_CURVE_KAPPA: self.kappa,
            "kinetics_order_agreement": self.order_agreement,
        }


def analyse_kinetics(cases: Sequence[KineticsCase], config: KineticsConfig = KineticsConfig()) -> KineticsResult:
    """Lesion kinetics of every case, the dataset summary and real/synthetic curve agreement.

    Args:
        cases: the cases, each with ``P >= 2`` phases.
        config: curve-type rule.

    Returns:
        :class:`KineticsResult`; ``dataset`` has columns ``source, phase,
        mean, sd, mean_within_sd, n`` (mean and SD over cases of the per-case
        lesion mean, and the mean within-box SD).
    """
    phases = lesion_phase_table(cases)
    dataset = (
        phases.groupby(["source", "phase"], sort=True)
        .agg(mean=("mean", "mean"), sd=("mean", "std"), mean_within_sd=("sd", "mean"), n=("mean", "size"))
        .reset_index()
    )
    curve_rows = []
    order_matches = []
    for case_id, group in phases.groupby("case", sort=False):
        curves = {}
        diffs = {}
        for source in Source:
            means = group[group.source == source.value].sort_values("phase")["mean"].to_numpy()
            try:
                curves[source.value] = classify_curve(means, config).value
            except ValueError as err:
                raise ValueError(f"case {case_id} ({source.value}): {err}") from err
            diffs[source.value] = np.sign(np.diff(means))
        order_matches.append(bool(np.array_equal(diffs[Source.REAL.value], diffs[Source.FAKE.value])))
        curve_rows.append({"case": case_id, "real": curves[Source.REAL.value], "synthetic": curves[Source.FAKE.value]})
    curves = pd.DataFrame(curve_rows)
    return KineticsResult(
        phases=phases,
        dataset=dataset,
        curves=curves,
        accuracy=float((curves.real == curves.synthetic).mean()),
        kappa=cohen_kappa(curves.real, curves.synthetic),
        order_agreement=float(np.mean(order_matches)),
        config=config,
    )


def plot_dataset_kinetics(result: KineticsResult, path: str | Path) -> Path:
    """Fig. 7: mean +- SD over cases of the lesion mean per phase, real grey, synthetic red."""
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for source, color, offset in ((Source.REAL, "grey", -0.08), (Source.FAKE, "red", 0.08)):
        d = result.dataset[result.dataset.source == source.value]
        ax.errorbar(d.phase + offset, d["mean"], yerr=d["sd"].fillna(0), fmt="o-", color=color, capsize=3, label=source.value)
    ax.set_xlabel("phase (0 = pre-contrast)")
    ax.set_ylabel("lesion mean / pre-contrast reference")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_case_kinetics(result: KineticsResult, path: str | Path, max_cases: int = 33, seed: int = 0) -> Path:
    """Fig. 8: per-case lesion mean per phase; o real, x synthetic, size ~ SD, colour = phase."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    case_ids = result.phases.case.unique()
    if len(case_ids) > max_cases:
        case_ids = np.random.default_rng(seed).choice(case_ids, max_cases, replace=False)
    fig = Figure(figsize=(max(5.0, 0.35 * len(case_ids)), 3.8))
    ax = fig.subplots()
    d = result.phases[result.phases.case.isin(case_ids)]
    x_of = {c: i for i, c in enumerate(case_ids)}
    n_phases = int(d.phase.max()) + 1
    cmap = colormaps["viridis"]
    scale = 400.0 / max(float(d.sd.max()), 1e-12)
    for source in Source:
        s = d[d.source == source.value]
        colors = ["grey" if p == 0 else cmap(p / max(n_phases - 1, 1)) for p in s.phase]
        sizes = 4 + scale * s.sd
        if source is Source.REAL:
            ax.scatter(s.case.map(x_of), s["mean"], s=sizes, marker="o", facecolors="none", edgecolors=colors, label=source.value)
        else:
            ax.scatter(s.case.map(x_of), s["mean"], s=sizes, marker="x", c=colors, label=source.value)
    ax.set_xticks(range(len(case_ids)), [str(c) for c in case_ids], rotation=90, fontsize=6)
    ax.set_ylabel("lesion mean / pre-contrast reference")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path

