"""MR signal model: tissue maps + lesions + kinetics -> vendor-styled stored pixels.

Signal units are relative to fibroglandular tissue (FGT) on the fat-saturated
T1 pre-contrast image (``FGT_T1 = 0.42``). A DCE phase at time ``t`` is

    S(t) = S_pre + sum_i M_i * E_i(t)

where each ``M_i`` is a static map (pre-contrast signal of the tissue that
enhances, times its fraction) and ``E_i`` its EMM relative enhancement
(:mod:`kinetics`): FGT background parenchymal enhancement (patchy: modulated
by a log-normal speckle field, so BPE appears as foci), blood pool (heart,
aorta and the breast / chest-wall vessels: early, strong), muscle and skin,
and each lesion (necrotic cores excluded, malignant rims brighter). A lesion
replaces every tissue, vessels included, inside its outline.
The static maps are built once per study; a phase costs a few fused
multiply-adds on the volume. The vendor then applies its contrast habit
(``gamma``), intensity scale and smooth multiplicative bias field, adds Rician
noise of its own sigma and quantises to uint16 stored values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow.phantom.anatomy import Anatomy, TissueMaps
from breastflow.phantom.geometry import Grid
from breastflow.phantom.kinetics import Kinetics
from breastflow.phantom.lesions import Lesion, LesionRaster
from breastflow.phantom.protocol import Protocol

FGT_T1 = 0.42
T1_SIGNAL = {"skin": 0.30, "muscle": 0.30, "thorax": 0.16, "lung": 0.03, "blood": 0.18, "bone": 0.07}
T2_SIGNAL = {"fgt": 0.30, "fat": 0.85, "skin": 0.45, "muscle": 0.15, "thorax": 0.30, "lung": 0.03,
             "blood": 0.08, "bone": 0.35}
NECROSIS_T1, NECROSIS_T2 = 0.6 * FGT_T1, 0.9


@dataclass(frozen=True)
class Physiology:
    """Per-study enhancement of normal tissue and the bias-field draw.

    Attributes:
        bpe, blood, muscle: EMM kinetics of FGT, blood pool and muscle/skin.
        bias_jitter: three factors (A-P, L-R, radial) scaling the vendor's bias amplitudes.
    """

    bpe: Kinetics
    blood: Kinetics
    muscle: Kinetics
    bias_jitter: tuple[float, float, float]


@dataclass
class DceModel:
    """Static maps of one study on the DCE grid (float32 ``(n_slices, rows, cols)``).

    Attributes:
        pre: pre-contrast signal.
        parts: ``(map, kinetics)`` pairs of enhancing normal tissue.
        lesions: ``(raster, enhancing map in its box, kinetics)`` per lesion.
    """

    pre: np.ndarray
    parts: list[tuple[np.ndarray, Kinetics]]
    lesions: list[tuple[LesionRaster, np.ndarray, Kinetics]]

    def signal(self, t_min: float | None, k0: int = 0, k1: int | None = None) -> np.ndarray:
        """Noise-free signal of slices ``k0:k1`` at ``t_min`` minutes after injection.

        Args:
            t_min: time after injection; ``None`` gives the pre-contrast signal.
            k0, k1: slab of slices (default: all).

        Returns:
            float32 ``(k1 - k0, rows, cols)``.
        """
        k1 = self.pre.shape[0] if k1 is None else k1
        out = self.pre[k0:k1].copy()
        if t_min is None:
            return out
        for m, kin in self.parts:
            out += m[k0:k1] * np.float32(kin.enhancement(t_min))
        for raster, m, kin in self.lesions:
            zs = raster.box[0]
            a, b = max(zs.start, k0), min(zs.stop, k1)
            if a < b:
                box = (slice(a - k0, b - k0), raster.box[1], raster.box[2])
                out[box] += m[a - zs.start:b - zs.start] * np.float32(kin.enhancement(t_min))
        return out


def nonzero_box(a: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the non-zero voxels of a 3D array, or ``None`` if there are none."""
    mask = a != 0
    box = []
    for axis in range(3):
        idx = np.nonzero(mask.any(axis=tuple(b for b in range(3) if b != axis)))[0]
        if idx.size == 0:
            return None
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return box[0], box[1], box[2]


def textured_thorax(anatomy: Anatomy, thorax: np.ndarray, grid: Grid) -> np.ndarray:
    """``thorax`` fraction times the chest texture ``1 + 0.25 f``, sampled only where the thorax is."""
    out = np.zeros(grid.shape, dtype=np.float32)
    box = nonzero_box(thorax)
    if box is not None:
        out[box] = thorax[box] * (1.0 + 0.25 * anatomy.thorax_texture.sample(grid, box))
    return out


def bpe_speckle(anatomy: Anatomy, grid: Grid, box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
    """Patchy BPE: log-normal factor of mean ~1 from a fine smooth field.

    Returns:
        float32 ``(n_slices, rows, cols)``, or the shape of ``box`` (voxels ``grid[box]``).
    """
    tex = anatomy.bpe_texture.sample(grid, box)
    tex *= np.float32(0.75)
    tex -= np.float32(0.5 * 0.75**2)
    return np.exp(tex, out=tex)


def build_dce_model(
    anatomy: Anatomy, maps: TissueMaps, grid: Grid, rasters: list[tuple[Lesion, LesionRaster]],
    physiology: Physiology, fat_residual: float,
) -> DceModel:
    """Combine tissue maps and lesions into the static maps of the DCE model.

    Args:
        anatomy: the patient (for the chest-wall texture).
        maps: tissue fractions on ``grid``.
        grid: the DCE grid.
        rasters: lesions rasterised on ``grid``.
        physiology: normal-tissue kinetics.
        fat_residual: vendor's fat signal after fat suppression.
    """
    s = T1_SIGNAL
    thorax = textured_thorax(anatomy, maps.thorax, grid)
    fgt = maps.fgt * np.float32(FGT_T1)
    # sums accumulated in place in the order written (same values, fewer full-volume temporaries)
    scratch = np.empty(grid.shape, dtype=np.float32)
    pre = fgt.copy()
    for m, c in ((maps.fat, fat_residual), (maps.skin, s["skin"]), (maps.muscle, s["muscle"]),
                 (thorax, s["thorax"]), (maps.lung, s["lung"]), (maps.blood, s["blood"]), (maps.bone, s["bone"])):
        pre += np.multiply(m, np.float32(c), out=scratch)
    muscle = maps.muscle * np.float32(s["muscle"])
    muscle += np.multiply(maps.skin, np.float32(s["skin"]), out=scratch)
    muscle += np.multiply(thorax, np.float32(0.5 * s["thorax"]), out=scratch)
    del scratch
    blood = maps.blood * np.float32(s["blood"])
    lesion_parts = []
    for lesion, r in rasters:
        occ = r.occupancy * maps.breast[r.box]  # lesions stay inside the breast
        enhancing = occ - r.core * occ
        les_pre = np.float32(FGT_T1 * lesion.t1_ratio)
        pre[r.box] = pre[r.box] * (1 - occ) + enhancing * les_pre + (occ - enhancing) * np.float32(NECROSIS_T1)
        fgt[r.box] *= 1 - occ
        muscle[r.box] *= 1 - occ
        blood[r.box] *= 1 - occ
        lesion_parts.append((r, (enhancing * les_pre * r.texture).astype(np.float32), lesion.kinetics))
    box = nonzero_box(fgt)  # speckle only where there is FGT
    if box is not None:
        fgt[box] *= bpe_speckle(anatomy, grid, box)
    parts = [(fgt, physiology.bpe), (blood, physiology.blood), (muscle, physiology.muscle)]
    return DceModel(pre=pre.astype(np.float32, copy=False), parts=parts, lesions=lesion_parts)


def t2_signal(anatomy: Anatomy, maps: TissueMaps, grid: Grid, rasters: list[tuple[Lesion, LesionRaster]]) -> np.ndarray:
    """T2-weighted (no fat suppression) signal on ``grid``: fat bright, benign lesions bright."""
    s = T2_SIGNAL
    out = (maps.fgt * np.float32(s["fgt"]) + maps.fat * np.float32(s["fat"]) + maps.skin * np.float32(s["skin"])
           + maps.muscle * np.float32(s["muscle"]) + textured_thorax(anatomy, maps.thorax, grid) * np.float32(s["thorax"])
           + maps.lung * np.float32(s["lung"]) + maps.blood * np.float32(s["blood"])
           + maps.bone * np.float32(s["bone"]))
    for lesion, r in rasters:
        occ = r.occupancy * maps.breast[r.box]
        core = r.core * occ
        les = np.float32(s["fgt"] * lesion.t2_ratio)
        out[r.box] = out[r.box] * (1 - occ) + (occ - core) * les + core * np.float32(NECROSIS_T2)
    return out.astype(np.float32)


def bias_field(protocol: Protocol, grid: Grid, jitter: tuple[float, float, float]) -> np.ndarray:
    """Smooth multiplicative receive-coil bias, ``(rows, cols)`` float32 (same for every slice).

    GE-style: strong anterior-posterior fall-off (breasts in the coil are bright);
    Siemens-style: left-right asymmetry; Philips-style: radial fall-off.
    """
    v = protocol.vendor
    y = grid.axis_mm(1)[:, None] / 150.0
    x = grid.axis_mm(2)[None, :] / 150.0
    log_b = (-v.bias_ap * jitter[0] * y + v.bias_lr * jitter[1] * x
             - v.bias_radial * jitter[2] * (x * x + y * y))
    return np.exp(log_b - log_b.mean()).astype(np.float32)


def to_stored(
    signal: np.ndarray,
    protocol: Protocol,
    bias: np.ndarray,
    rng: np.random.Generator,
    slope: float,
    gamma: float | None = None,
) -> np.ndarray:
    """Vendor rendering: contrast habit, scale, bias, Rician noise, quantisation.

    Args:
        signal: noise-free relative signal ``(n_slices, rows, cols)`` float32 (consumed).
        protocol: the study protocol (vendor, scale, slope, field strength).
        bias: ``(rows, cols)`` multiplicative field.
        rng: study generator (two normal draws of the volume's size).
        slope: RescaleSlope written to the headers (stored = real / slope).
        gamma: overrides the vendor's contrast exponent (T2 uses 1).

    Returns:
        uint16 stored values; real-world value = stored * RescaleSlope.
    """
    v = protocol.vendor
    g = v.gamma if gamma is None else gamma
    if g != 1.0:
        np.maximum(signal, 0.0, out=signal)
        signal = np.float32(FGT_T1) * np.power(signal / np.float32(FGT_T1), np.float32(g))
    signal *= bias * np.float32(protocol.scale)
    sigma = np.float32(v.noise_sigma * FGT_T1 * protocol.scale * np.sqrt(1.5 / protocol.model.field_strength))
    n1 = rng.standard_normal(signal.shape, dtype=np.float32)
    n1 *= sigma
    signal += n1
    np.square(signal, out=signal)
    n2 = rng.standard_normal(signal.shape, dtype=np.float32)
    n2 *= sigma
    np.square(n2, out=n2)
    signal += n2
    np.sqrt(signal, out=signal)
    signal *= np.float32(1.0 / slope)
    np.rint(signal, out=signal)
    np.clip(signal, 0, v.max_stored, out=signal)
    return signal.astype(np.uint16)


def window_of(stored: np.ndarray, slope: float) -> tuple[float, float]:
    """(WindowCenter, WindowWidth) in real-world units from a strided sample's 1-99.5 percentiles."""
    sample = stored[::2, ::4, ::4].astype(np.float32) * slope
    lo, hi = np.percentile(sample, [1.0, 99.5])
    width = max(float(hi - lo), 1.0)
    return float(lo + width / 2), width
