"""Projected anatomy of a compressed breast for the mammography phantom.

Everything here is a 2D projection model in millimetres. For one view the
renderer builds, on a coarse working grid (about 0.3 mm, or the output grid
when that is already coarse), the *normalised attenuation*

    a(x, y) = sum_i mu_i * path_i(x, y) / (mu_gland * T)

so that air is 0, a full-thickness fatty path ~0.56 and a fully glandular path
1.0 (mu_fat / mu_gland ~ 0.56 near 20 keV; Johns & Yaffe 1987). It holds:

* breast outline: a superellipse against the chest wall (CC) or a taller,
  tilted one cut by the top edge (MLO), plus a nipple bump at the apex;
* thickness fall-off: the periphery is a half-cylinder of radius T/2, so the
  path length drops as ``2 sqrt(R^2 - (R - d)^2)`` within ``d < R`` of the skin,
  and the 1.5 mm skin shell gives the bright tangential skin line;
* parenchyma: power-law noise (``P(f) ~ 1/f^beta``, beta = 3; Burgess 2001)
  plus a central prior, thresholded at the quantile that gives the BI-RADS
  density category's fibroglandular area fraction, with a soft edge;
  Cooper's-ligament-like strands from the zero set of a second power-law field;
* the pectoral muscle (MLO only): a triangle in the upper chest-wall corner
  whose muscle share of the path grows towards the corner;
* lesions: circumscribed (benign) or spiculated (malignant) masses, and
  calcification clusters rendered at full resolution.

The canonical image has the chest wall on the left (left breast as displayed);
right-breast views are mirrored at the end. Arrays are ``(rows, cols)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

from breastflow.phantom.mammo_lesions import LesionKind, LesionSpec, add_calcifications, mass_paths
from breastflow.phantom.mammo_views import Density, MammoView
from breastflow.vocabulary import Laterality, ViewPosition

FAT_RATIO = 0.56  # mu_fat / mu_gland
SKIN_RATIO = 1.1  # mu_skin / mu_gland
MASS_RATIO = 1.3  # mu_mass / mu_gland (a mass replaces the tissue it displaces)
SKIN_MM = 1.5
WORK_COLS = 640  # target columns of the working grid


@dataclass(frozen=True)
class BreastShape:
    """Outline and compression of one breast (shared by its CC and MLO views).

    Fractions are of the image width (x, from the chest wall) or height (y).

    Attributes:
        depth: nipple distance from the chest wall (CC); MLO is 8 % deeper.
        cc_half_height, mlo_half_height: half extents along y at the chest wall.
        cc_centre, mlo_centre: y of the outline's axis at the chest wall.
        mlo_tilt: downward drift of the MLO axis per unit x (nipple lower).
        thickness_mm: compressed thickness T (BodyPartThickness).
        force_n: compression force (CompressionForce, newtons).
        pectoral_width, pectoral_height: legs of the MLO pectoral triangle.
        nipple_mm: nipple radius.
    """

    depth: float
    cc_half_height: float
    mlo_half_height: float
    cc_centre: float
    mlo_centre: float
    mlo_tilt: float
    thickness_mm: float
    force_n: float
    pectoral_width: float
    pectoral_height: float
    nipple_mm: float


@dataclass(frozen=True)
class RenderedView:
    """One view's noiseless projection, in display orientation.

    Attributes:
        attenuation: normalised attenuation ``a``, float32 ``(rows, cols)``.
        breast: breast mask (skin included), bool ``(rows, cols)``.
        pectoral: pectoral-muscle mask (empty for CC), bool ``(rows, cols)``.
        dense_fraction: fibroglandular share of the non-muscle breast area.
        lesion_boxes: per lesion, ``(start_row, end_row, start_col, end_col)``
            inclusive full-resolution pixel bounds.
    """

    attenuation: np.ndarray
    breast: np.ndarray
    pectoral: np.ndarray
    dense_fraction: float
    lesion_boxes: tuple[tuple[int, int, int, int], ...]


def draw_density(rng: np.random.Generator) -> Density:
    """BI-RADS category with screening-population frequencies (10/40/40/10 %)."""
    return list(Density)[int(rng.choice(4, p=[0.1, 0.4, 0.4, 0.1]))]


def draw_breast_shape(rng: np.random.Generator) -> BreastShape:
    """Draw one breast's outline and compression."""
    return BreastShape(
        depth=float(rng.uniform(0.55, 0.78)),
        cc_half_height=float(rng.uniform(0.30, 0.42)),
        mlo_half_height=float(rng.uniform(0.42, 0.52)),
        cc_centre=float(rng.uniform(0.46, 0.54)),
        mlo_centre=float(rng.uniform(0.36, 0.44)),
        mlo_tilt=float(rng.uniform(0.05, 0.2)),
        thickness_mm=float(rng.uniform(35.0, 75.0)),
        force_n=float(rng.uniform(60.0, 160.0)),
        pectoral_width=float(rng.uniform(0.18, 0.32)),
        pectoral_height=float(rng.uniform(0.40, 0.65)),
        nipple_mm=float(rng.uniform(3.5, 6.0)),
    )


def power_law_noise(rng: np.random.Generator, shape: tuple[int, int], spacing_mm: float,
                    beta: float, largest_mm: float = 40.0) -> np.ndarray:
    """Zero-mean unit-variance noise with power spectrum ``1 / f**beta``.

    Args:
        shape: ``(rows, cols)``.
        spacing_mm: grid step; frequencies are in cycles/mm.
        beta: spectral exponent (~3 for mammographic parenchyma).
        largest_mm: frequencies below ``1 / largest_mm`` are flattened.
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    fy = np.fft.fftfreq(shape[0], d=spacing_mm).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1], d=spacing_mm).astype(np.float32)[None, :]
    f = np.maximum(np.sqrt(fy * fy + fx * fx), 1.0 / largest_mm)
    field = np.fft.irfft2(np.fft.rfft2(white) * f ** (-beta / 2.0), s=shape).astype(np.float32)
    field -= field.mean()
    return field / (field.std() + 1e-12)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return special.expit(v).astype(np.float32)


class _Outline:
    """Analytic outline of one view in mm, chest wall at x = 0."""

    def __init__(self, shape: BreastShape, position: ViewPosition, width_mm: float, height_mm: float):
        mlo = position is ViewPosition.MLO
        self.depth = shape.depth * width_mm * (1.08 if mlo else 1.0)
        self.half = (shape.mlo_half_height if mlo else shape.cc_half_height) * height_mm
        self.centre = (shape.mlo_centre if mlo else shape.cc_centre) * height_mm
        self.tilt = shape.mlo_tilt if mlo else 0.0
        self.power = 2.0 if mlo else 2.4

    def axis(self, x: np.ndarray | float) -> np.ndarray | float:
        return self.centre + self.tilt * x

    def half_at(self, x: float) -> float:
        return self.half * max(1.0 - (x / self.depth) ** self.power, 0.0) ** (1.0 / self.power)

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = np.abs(x) / self.depth
        v = np.abs(y - self.axis(x)) / self.half
        return u**self.power + v**self.power < 1.0


def _periphery_paths(dist_mm: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """Tissue and skin path (mm) at ``dist_mm`` inside the skin line (half-cylinder edge)."""
    r = thickness / 2.0
    u = r - np.minimum(dist_mm, r)
    outer = 2.0 * np.sqrt(np.maximum(r * r - u * u, 0.0))
    inner = 2.0 * np.sqrt(np.maximum((r - SKIN_MM) ** 2 - u * u, 0.0))
    return inner, outer - inner


def render_view(view: MammoView, shape: BreastShape, density: Density, lesions: list[LesionSpec],
                matrix: tuple[int, int], spacing_mm: float, rng: np.random.Generator) -> RenderedView:
    """Render one view's normalised attenuation (no detector noise, no tone curve).

    Args:
        view: which breast and projection.
        shape: the breast's outline (the same object for its CC and MLO).
        density: BI-RADS category (drives the fibroglandular area fraction).
        lesions: findings of the study; those of the other breast are ignored.
        matrix: output ``(rows, cols)``, portrait.
        spacing_mm: output pixel pitch.
        rng: generator, consumed deterministically.

    Raises:
        ValueError: if ``matrix`` is not portrait or ``spacing_mm`` not positive.
    """
    rows, cols = matrix
    if rows <= cols or cols < 16:
        raise ValueError(f"matrix must be portrait (rows > cols >= 16), got {matrix}")
    if spacing_mm <= 0:
        raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
    factor = max(1, int(np.ceil(cols / WORK_COLS)))
    wr, wc = -(-rows // factor), -(-cols // factor)
    ws = spacing_mm * factor
    thickness = shape.thickness_mm
    outline = _Outline(shape, view.position, cols * spacing_mm, rows * spacing_mm)
    y = ((np.arange(wr, dtype=np.float32) + 0.5) * ws)[:, None]
    x = ((np.arange(wc, dtype=np.float32) + 0.5) * ws)[None, :]

    nipple_y = float(outline.axis(outline.depth))
    to_nipple = np.sqrt((x - outline.depth) ** 2 + (y - nipple_y) ** 2)
    breast = outline.inside(x, y) | (to_nipple < shape.nipple_mm)
    padded = np.pad(breast, 4, mode="edge")  # chest wall / cut edges are not skin
    dist = ndimage.distance_transform_edt(padded, sampling=ws)[4:-4, 4:-4].astype(np.float32)
    tissue, skin = _periphery_paths(dist, thickness)

    pectoral = np.zeros_like(breast)
    muscle = np.zeros((wr, wc), np.float32)
    if view.position is ViewPosition.MLO:
        pw, ph = shape.pectoral_width * cols * spacing_mm, shape.pectoral_height * rows * spacing_mm
        s = x / pw + y / ph - 0.25 * (x / pw) * (y / ph)  # < 1 inside, slightly convex edge
        pectoral = breast & (s < 1.0)
        muscle = _sigmoid((1.0 - s) * min(pw, ph) / 1.0) * np.clip(0.45 + 0.9 * (1.0 - s), 0.0, 1.0)

    # Parenchyma: isotropic power-law texture + streaks converging on the nipple + a central
    # prior, thresholded at the quantile that gives the density category's area fraction.
    rho = np.sqrt((x / outline.depth) ** 2 + ((y - outline.axis(x)) / outline.half) ** 2)
    prior = np.exp(-(((rho - 0.5) / 0.28) ** 2))
    streaks = _radial_noise(rng, x, y, (outline.depth, nipple_y), beta=3.0)
    field = 0.8 * power_law_noise(rng, (wr, wc), ws, beta=3.0) + 0.6 * streaks + 1.8 * prior
    glandular_zone = breast & ~pectoral & (dist > SKIN_MM + 1.0)
    target = float(np.clip(density.dense_fraction + rng.normal(0.0, 0.03), 0.03, 0.95))
    threshold = np.quantile(field[glandular_zone], 1.0 - target) if glandular_zone.any() else 0.0
    dense = _sigmoid((field - threshold) / 0.3) * (dist > SKIN_MM)
    lobules = np.clip(power_law_noise(rng, (wr, wc), ws, beta=2.6, largest_mm=8.0), -2.5, 2.5)
    ligaments = np.exp(-((_radial_noise(rng, x, y, (outline.depth, nipple_y), beta=3.5) / 0.08) ** 2))
    gland = (0.05 + dense * (0.78 + 0.1 * lobules)
             + 0.18 * ligaments * (1.0 - dense) * (dist > 3.0 * SKIN_MM))
    areola = 0.06 * np.exp(-((to_nipple / 12.0) ** 2))

    soft = FAT_RATIO + (1.0 - FAT_RATIO) * np.clip(gland, 0.0, 1.0)
    soft = soft * (1.0 - muscle) + 1.0 * muscle
    a = (tissue * soft + skin * SKIN_RATIO) / thickness + areola * (tissue / thickness)

    boxes = []
    for lesion in lesions:
        if lesion.laterality is not view.laterality:
            continue
        cx, cy = _lesion_centre(lesion, view, outline, shape, cols * spacing_mm, rows * spacing_mm)
        if lesion.kind is LesionKind.MASS:
            chord, spicules = mass_paths(x, y, cx, cy, lesion, rng)
            a += (chord * (MASS_RATIO - soft) + spicules) / thickness
            half = lesion.size_mm / 2.0 * 1.3
        else:
            half = lesion.size_mm / 2.0
        boxes.append((lesion, cx, cy, half))
    a = np.where(breast, a, 0.0).astype(np.float32)

    if factor > 1:
        zoom = (rows / wr, cols / wc)
        a = ndimage.zoom(a, zoom, order=1, mode="nearest", grid_mode=True)
        breast = ndimage.zoom(breast.astype(np.float32), zoom, order=1, mode="nearest", grid_mode=True) > 0.5
        pectoral = ndimage.zoom(pectoral.astype(np.uint8), zoom, order=0, mode="nearest", grid_mode=True) > 0
        a *= breast
    for lesion, cx, cy, _ in boxes:
        if lesion.kind is LesionKind.CALCIFICATION:
            add_calcifications(a, cx, cy, lesion, spacing_mm, thickness, rng)

    dense_share = float((dense > 0.5)[glandular_zone].mean()) if glandular_zone.any() else 0.0
    pixel_boxes = []
    for _, cx, cy, half in boxes:
        r0, r1 = int(np.floor((cy - half) / spacing_mm)), int(np.ceil((cy + half) / spacing_mm))
        c0, c1 = int(np.floor((cx - half) / spacing_mm)), int(np.ceil((cx + half) / spacing_mm))
        r0, r1, c0, c1 = max(r0, 0), min(r1, rows - 1), max(c0, 0), min(c1, cols - 1)
        if view.laterality is Laterality.RIGHT:
            c0, c1 = cols - 1 - c1, cols - 1 - c0
        pixel_boxes.append((r0, r1, c0, c1))
    if view.laterality is Laterality.RIGHT:
        a, breast, pectoral = a[:, ::-1], breast[:, ::-1], pectoral[:, ::-1]
    return RenderedView(
        attenuation=np.ascontiguousarray(a, dtype=np.float32),
        breast=np.ascontiguousarray(breast),
        pectoral=np.ascontiguousarray(pectoral),
        dense_fraction=dense_share,
        lesion_boxes=tuple(pixel_boxes),
    )


def _lesion_centre(lesion: LesionSpec, view: MammoView, outline: _Outline, shape: BreastShape,
                   width_mm: float, height_mm: float) -> tuple[float, float]:
    """Lesion centre (x, y) in mm: same depth in both views, inside the breast, off the muscle."""
    cx = lesion.depth * outline.depth
    offset = lesion.offset_cc if view.position is ViewPosition.CC else lesion.offset_mlo
    cy = float(outline.axis(cx)) + offset * 0.7 * outline.half_at(cx)
    if view.position is ViewPosition.MLO:
        pw, ph = shape.pectoral_width * width_mm, shape.pectoral_height * height_mm
        cx = max(cx, pw * (1.0 - cy / ph) + lesion.size_mm)  # in front of the muscle edge
        cx = min(cx, 0.85 * outline.depth)
    return cx, cy


def _radial_noise(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, nipple: tuple[float, float],
                  beta: float) -> np.ndarray:
    """Power-law noise stretched 4x along lines through the nipple (ducts, ligaments).

    The field is drawn on a polar grid around the nipple (4 mm radial step,
    1/60 rad angular step, i.e. ~1 mm across at 60 mm) and sampled bilinearly.
    """
    dx, dy = nipple[0] - x, y - nipple[1]
    r = np.sqrt(dx * dx + dy * dy)
    theta = np.arctan2(dy, dx)
    n_r, n_t = int(np.ceil(float(r.max()) / 4.0)) + 2, int(np.ceil(2 * np.pi * 60.0))
    polar = power_law_noise(rng, (n_r, n_t), 1.0, beta=beta, largest_mm=30.0)
    coords = np.stack(np.broadcast_arrays(r / 4.0, (theta + np.pi) * 60.0))
    return ndimage.map_coordinates(polar, coords, order=1, mode="grid-wrap").astype(np.float32)

