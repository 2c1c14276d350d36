"""Mammographic findings: masses and calcification clusters.

A :class:`LesionSpec` is drawn once per study and placed at the same depth
(chest wall to nipple) in the CC and MLO views of its breast by the renderer
in :mod:`breastflow.phantom.mammo_anatomy`; the functions here give its
projected path lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from breastflow.vocabulary import Laterality, LesionClass

CALC_RATIO = 25.0  # mu_calcium / mu_gland (effective, for visibility)


class LesionKind(str, Enum):
    """What a mammographic finding looks like."""

    MASS = "mass"
    CALCIFICATION = "calcification"


@dataclass(frozen=True)
class LesionSpec:
    """A finding in one breast, placed consistently in its CC and MLO views.

    Attributes:
        depth: position from chest wall to nipple, as a fraction of breast depth.
        offset_cc, offset_mlo: position across the breast, fraction of the local
            half-height (-1 top ... 1 bottom).
        size_mm: mass diameter, or cluster diameter for calcifications.
        n_calcs: number of calcifications (0 for masses).
    """

    kind: LesionKind
    lesion_class: LesionClass
    laterality: Laterality
    depth: float
    offset_cc: float
    offset_mlo: float
    size_mm: float
    n_calcs: int


def draw_lesions(rng: np.random.Generator, probability: float = 0.35) -> list[LesionSpec]:
    """Zero or one finding: a mass (60 %) or a calcification cluster, 40 % malignant."""
    if rng.random() >= probability:
        return []
    kind = LesionKind.MASS if rng.random() < 0.6 else LesionKind.CALCIFICATION
    malignant = rng.random() < 0.4
    size = rng.uniform(8.0, 22.0) if kind is LesionKind.MASS else rng.uniform(5.0, 12.0)
    return [LesionSpec(
        kind=kind,
        lesion_class=LesionClass.MALIGNANT if malignant else LesionClass.BENIGN,
        laterality=Laterality.LEFT if rng.random() < 0.5 else Laterality.RIGHT,
        depth=float(rng.uniform(0.3, 0.75)),
        offset_cc=float(rng.uniform(-0.6, 0.6)),
        offset_mlo=float(rng.uniform(0.0, 0.6)),
        size_mm=float(size),
        n_calcs=0 if kind is LesionKind.MASS else int(rng.integers(6, 18 if malignant else 10)),
    )]


def mass_paths(x: np.ndarray, y: np.ndarray, cx: float, cy: float, lesion: LesionSpec,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Chord length (mm) through a mass and the spicules' extra path (mm, malignant only).

    Benign masses are smooth ellipsoids; malignant ones get a lobulated rim and
    8-14 tapering spicules 1.4-2.6 radii long.
    """
    r0 = lesion.size_mm / 2.0
    dx, dy = x - cx, y - cy
    theta = np.arctan2(dy, dx)
    spicules = np.zeros(np.broadcast(x, y).shape, np.float32)
    if lesion.lesion_class is LesionClass.MALIGNANT:
        radius = np.full_like(theta, r0)
        for k in (3, 5, 7):
            radius = radius * (1.0 + 0.08 * np.sin(k * theta + rng.uniform(0, 2 * np.pi)))
        for angle in rng.uniform(0, 2 * np.pi, size=int(rng.integers(8, 15))):
            length = r0 * rng.uniform(1.4, 2.6)
            along = dx * np.cos(angle) + dy * np.sin(angle)
            perp = -dx * np.sin(angle) + dy * np.cos(angle)
            on = (along > 0) & (along < length)
            spicules += np.where(on, 2.0 * np.exp(-((perp / 0.5) ** 2)) * (1.0 - along / length), 0.0)
    else:
        elong = rng.uniform(0.75, 1.0)
        radius = r0 / np.sqrt(np.cos(theta) ** 2 + (np.sin(theta) / elong) ** 2)
    rho2 = (dx * dx + dy * dy) / (radius * radius)
    chord = 2.0 * r0 * np.sqrt(np.clip(1.0 - rho2, 0.0, 1.0))
    return chord.astype(np.float32), spicules


def add_calcifications(a: np.ndarray, cx: float, cy: float, lesion: LesionSpec, spacing_mm: float,
                        thickness: float, rng: np.random.Generator) -> None:
    """Add a cluster of spherical calcifications in place (canonical orientation, full res).

    Each calcification's projected volume is spread over the pixels it covers,
    so sub-pixel calcifications (tiny profile) keep their integrated signal.
    """
    spread = lesion.size_mm / 2.0
    rows, cols = a.shape
    for _ in range(lesion.n_calcs):
        px, py = cx + rng.normal(0.0, spread / 2.0), cy + rng.normal(0.0, spread / 2.0)
        radius = rng.uniform(0.1, 0.3 if lesion.lesion_class is LesionClass.MALIGNANT else 0.45)
        half_px = int(np.ceil(radius / spacing_mm)) + 1
        ci, cj = int(py / spacing_mm), int(px / spacing_mm)
        i0, i1 = max(ci - half_px, 0), min(ci + half_px + 1, rows)
        j0, j1 = max(cj - half_px, 0), min(cj + half_px + 1, cols)
        if i0 >= i1 or j0 >= j1:
            continue
        yy = ((np.arange(i0, i1) + 0.5) * spacing_mm - py)[:, None]
        xx = ((np.arange(j0, j1) + 0.5) * spacing_mm - px)[None, :]
        chord = 2.0 * np.sqrt(np.clip(radius**2 - xx * xx - yy * yy, 0.0, None))
        volume = 4.0 / 3.0 * np.pi * radius**3
        if chord.sum() * spacing_mm**2 < 0.5 * volume:  # sub-pixel: deposit its volume at the centre
            chord = np.zeros_like(chord)
            chord[min(ci - i0, chord.shape[0] - 1), min(cj - j0, chord.shape[1] - 1)] = volume / spacing_mm**2
        region = a[i0:i1, j0:j1]
        region += np.where(region > 0, chord * CALC_RATIO / thickness, 0.0).astype(np.float32)
