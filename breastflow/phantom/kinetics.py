"""Parametric contrast-uptake curves (empirical mathematical model of DCE-MRI).

Relative enhancement of a tissue at time ``t`` (minutes after injection) follows
the empirical mathematical model (EMM) of Fan et al., *Magn Reson Med* 2004:

    E(t) = A * (1 - exp(-alpha * t)) * exp(-beta * t)

``A`` is the amplitude (peak relative enhancement, signal/pre - 1), ``alpha``
the wash-in rate (1/min) and ``beta`` the wash-out rate (1/min; negative for a
curve that keeps rising). The delayed-phase shape of the resulting signal
``S(t) = S_pre * (1 + E(t))`` is classified with the BI-RADS lexicon, comparing
the last post-contrast signal with the peak of the earlier ones:

* washout: last < peak by more than 10 %;
* plateau: last within +-10 % of the first post-contrast signal;
* persistent: keeps increasing, last > first post-contrast signal by more than 10 %.

:func:`draw_lesion_kinetics` draws parameters for a wanted curve type and
re-draws until the shape holds *with margin* at the study's actual phase times,
so every written lesion has the intended shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow.vocabulary import CurveType, LesionClass

# Margins used when drawing (tighter than the +-10 % used to classify).
WASHOUT_MARGIN = 0.18
PERSISTENT_MARGIN = 0.18
PLATEAU_TOLERANCE = 0.04


@dataclass(frozen=True)
class Kinetics:
    """EMM parameters of one tissue.

    Attributes:
        amplitude: ``A`` (relative enhancement scale, >= 0).
        wash_in: ``alpha`` in 1/min (> 0).
        wash_out: ``beta`` in 1/min (< 0 means still rising late).
    """

    amplitude: float
    wash_in: float
    wash_out: float

    def enhancement(self, t_min: np.ndarray | float) -> np.ndarray:
        """Relative enhancement ``E(t)`` at times ``t_min`` (minutes; 0 before injection)."""
        t = np.maximum(np.asarray(t_min, dtype=np.float64), 0.0)
        return self.amplitude * (1.0 - np.exp(-self.wash_in * t)) * np.exp(-self.wash_out * t)


def classify_curve(signal: np.ndarray, tolerance: float = 0.10) -> CurveType | None:
    """BI-RADS delayed-phase type of a post-contrast signal series.

    Args:
        signal: mean signal per post-contrast phase, shape ``(n_post,)``, n_post >= 2.
        tolerance: relative change separating plateau from the others (0.10 = 10 %).

    Returns:
        The curve type, or ``None`` when the series fits none (e.g. rises then falls
        by less than ``tolerance`` below the peak while ending above the first phase).

    Raises:
        ValueError: with fewer than two post-contrast phases.
    """
    s = np.asarray(signal, dtype=np.float64)
    if s.ndim != 1 or s.size < 2:
        raise ValueError(f"need >= 2 post-contrast values, got shape {s.shape}")
    first, last, peak = s[0], s[-1], s[:-1].max()
    if last < peak * (1.0 - tolerance):
        return CurveType.WASHOUT
    if last > first * (1.0 + tolerance) and np.all(np.diff(s) > 0):
        return CurveType.PERSISTENT
    if abs(last / first - 1.0) <= tolerance:
        return CurveType.PLATEAU
    return None


_RANGES: dict[CurveType, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    # (amplitude, wash_in, wash_out)
    CurveType.WASHOUT: ((1.4, 2.6), (2.5, 5.0), (0.10, 0.22)),
    CurveType.PLATEAU: ((1.0, 2.0), (2.0, 4.0), (-0.01, 0.015)),
    CurveType.PERSISTENT: ((0.9, 1.8), (0.3, 0.8), (-0.08, -0.02)),
}


def _holds(kin: Kinetics, curve: CurveType, times: np.ndarray) -> bool:
    s = 1.0 + kin.enhancement(times)
    if s.size < 2:
        return True
    first, last, peak = s[0], s[-1], s[:-1].max()
    if curve is CurveType.WASHOUT:
        return bool(last < peak * (1.0 - WASHOUT_MARGIN))
    if curve is CurveType.PERSISTENT:
        return bool(last > first * (1.0 + PERSISTENT_MARGIN) and np.all(np.diff(s) > 0))
    return bool(abs(last / first - 1.0) <= PLATEAU_TOLERANCE and abs(last / peak - 1.0) <= PLATEAU_TOLERANCE)


def draw_lesion_kinetics(rng: np.random.Generator, curve: CurveType, times: np.ndarray) -> Kinetics:
    """Draw EMM parameters whose signal at ``times`` has the shape ``curve`` with margin.

    Args:
        rng: study generator.
        curve: wanted delayed-phase shape.
        times: post-contrast acquisition times (k-space centre) in minutes, ``(n_post,)``.

    Raises:
        RuntimeError: if no parameters fit after many tries (phase timing too short).
    """
    (a0, a1), (i0, i1), (o0, o1) = _RANGES[curve]
    for _ in range(200):
        kin = Kinetics(float(rng.uniform(a0, a1)), float(rng.uniform(i0, i1)), float(rng.uniform(o0, o1)))
        if _holds(kin, curve, times):
            return kin
        # widen towards the extreme of the curve family on failure
        if curve is CurveType.WASHOUT:
            o1 += 0.02
        elif curve is CurveType.PERSISTENT:
            o0 -= 0.01
        else:  # plateau needs the first phase near the peak: faster wash-in
            i0, i1 = i0 + 0.2, i1 + 0.4
    raise RuntimeError(f"could not draw {curve.value} kinetics for phase times {times.tolist()}")


def draw_curve_type(rng: np.random.Generator, lesion_class: LesionClass) -> CurveType:
    """Curve type given the class: malignant mostly wash-out, benign mostly persistent."""
    p = {LesionClass.MALIGNANT: [0.10, 0.30, 0.60], LesionClass.BENIGN: [0.70, 0.20, 0.10]}[lesion_class]
    return CurveType(rng.choice([c.value for c in CurveType], p=p))


def draw_bpe(rng: np.random.Generator) -> Kinetics:
    """Background parenchymal enhancement of FGT: slow, persistent, minimal to marked."""
    level = float(rng.choice([0.08, 0.18, 0.32, 0.5], p=[0.35, 0.35, 0.2, 0.1]))
    return Kinetics(amplitude=level, wash_in=float(rng.uniform(0.12, 0.3)), wash_out=-0.01)


def draw_blood(rng: np.random.Generator) -> Kinetics:
    """Blood pool (heart, aorta): fast first pass, slow decline."""
    return Kinetics(float(rng.uniform(3.0, 4.0)), float(rng.uniform(6.0, 9.0)), float(rng.uniform(0.05, 0.09)))


def draw_muscle(rng: np.random.Generator) -> Kinetics:
    """Pectoral muscle and chest-wall tissue: mild, slow enhancement."""
    return Kinetics(float(rng.uniform(0.25, 0.45)), float(rng.uniform(0.8, 1.5)), float(rng.uniform(-0.02, 0.02)))
