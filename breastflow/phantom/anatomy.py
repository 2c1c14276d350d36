"""Static anatomy of a prone bilateral breast MRI: tissue fraction maps in patient mm.

The body is described by continuous shapes in LPS millimetres (see
:mod:`breastflow.phantom.geometry` for axes): a thorax (elliptic cross-section
whose anterior wall curves backwards laterally) with a pectoral muscle band,
rib/intercostal layer, two lungs, the heart and descending aorta; and two
breasts hanging anteriorly (patient prone) as randomly perturbed
hemi-ellipsoids attached to the chest wall, wrapped in skin. Inside each
breast, fibroglandular tissue (FGT) is a thresholded mix of coarse and fine
smooth noise, streaky along the anterior-posterior axis (duct-like), denser
centrally and absent in the subcutaneous and retromammary fat layers; the
breast density category sets how much of the breast is FGT.

:meth:`Anatomy.tissue_maps` samples the model on any :class:`Grid` and returns
per-voxel tissue fractions with soft (partial-volume) edges, so the same
anatomy renders consistently on the T1 and T2 grids.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtri

from breastflow.phantom.fields import SmoothField, draw_field
from breastflow.phantom.geometry import Grid, slab

# Region of patient space in which breast texture fields are drawn (z, y, x mm).
BREAST_EXTENT_MM = ((-110.0, 110.0), (-200.0, 60.0), (-200.0, 200.0))
CHUNK_VOXELS = 1 << 21


@dataclass(frozen=True)
class Breast:
    """One breast as a hemi-ellipsoid hanging anteriorly from the chest wall.

    Attributes:
        centre_x: LPS x of the breast axis (negative = patient right).
        centre_z: LPS z of the breast axis.
        radius_x, radius_z: half-width (L-R) and half-height (S-I) in mm at the base.
        depth: anterior extent from the chest wall to the nipple in mm.
    """

    centre_x: float
    centre_z: float
    radius_x: float
    radius_z: float
    depth: float


@dataclass(frozen=True)
class TissueMaps:
    """Per-voxel tissue fractions on one grid, each float32 ``(n_slices, rows, cols)``.

    Fractions are in [0, 1] and sum to at most 1 (the rest is air).
    """

    fgt: np.ndarray
    fat: np.ndarray
    skin: np.ndarray
    muscle: np.ndarray
    thorax: np.ndarray
    lung: np.ndarray
    blood: np.ndarray
    breast: np.ndarray  # breast interior (fgt + fat inside the breasts), for lesion placement

    def body(self) -> np.ndarray:
        """Total tissue fraction (1 - air)."""
        return self.fgt + self.fat + self.skin + self.muscle + self.thorax + self.lung + self.blood


@dataclass(frozen=True)
class Anatomy:
    """A drawn patient. Build with :func:`draw_anatomy`; sample with :meth:`tissue_maps`.

    Attributes:
        chest_y: LPS y of the anterior chest wall at the midline (mm).
        chest_curve: how far (mm) the chest wall recedes at ``x = +-thorax_half_width``.
        thorax_half_width, thorax_depth: thorax ellipse semi-axes (x) and full A-P depth (mm).
        subcutaneous_mm: pre-sternal / subcutaneous fat layer thickness.
        skin_mm: skin thickness.
        pectoral_mm: pectoral muscle thickness.
        density: target FGT share of breast volume (BI-RADS a-d ~ 0.1-0.65).
        breasts: right and left breast.
        heart_centre, heart_radii: heart ellipsoid (x, y, z) in mm.
        shape_field, fgt_coarse, fgt_fine, thorax_texture: smooth random fields.
    """

    chest_y: float
    chest_curve: float
    thorax_half_width: float
    thorax_depth: float
    subcutaneous_mm: float
    skin_mm: float
    pectoral_mm: float
    density: float
    breasts: tuple[Breast, Breast]
    heart_centre: tuple[float, float, float]
    heart_radii: tuple[float, float, float]
    shape_field: SmoothField
    fgt_coarse: SmoothField
    fgt_fine: SmoothField
    thorax_texture: SmoothField

    def chest_wall_y(self, x: np.ndarray) -> np.ndarray:
        """LPS y of the anterior chest wall (behind the breasts) at lateral position ``x``."""
        return self.chest_y + self.chest_curve * (x / self.thorax_half_width) ** 2

    def anterior_extent(self) -> float:
        """Most anterior LPS y reached by either breast (mm), for FOV placement."""
        return min(self.chest_y - 1.1 * b.depth for b in self.breasts)

    def tissue_maps(self, grid: Grid) -> TissueMaps:
        """Sample all tissue fractions on ``grid`` (soft edges one voxel wide).

        Evaluated in slabs of a few slices so temporaries stay small (about 3x
        faster than whole-volume evaluation at 512 x 512 x 160).
        """
        names = [f.name for f in fields(TissueMaps)]
        out = {n: np.empty(grid.shape, dtype=np.float32) for n in names}
        step = max(1, CHUNK_VOXELS // (grid.rows * grid.cols))
        for k0 in range(0, grid.n_slices, step):
            k1 = min(grid.n_slices, k0 + step)
            part = self._tissue_maps(slab(grid, k0, k1))
            for n in names:
                out[n][k0:k1] = getattr(part, n)
        return TissueMaps(**out)

    def _tissue_maps(self, grid: Grid) -> TissueMaps:
        z = grid.axis_mm(0).astype(np.float32)[:, None, None]
        y = grid.axis_mm(1).astype(np.float32)[None, :, None]
        x = grid.axis_mm(2).astype(np.float32)[None, None, :]
        h = float(np.mean(grid.pixel_spacing))
        ycw = self.chest_wall_y(x)  # (1, 1, X)

        # Thorax: ellipse in x-y (slightly narrowing towards the feet), cut anteriorly.
        a_x = self.thorax_half_width * (1.0 + 0.0008 * z)
        a_y = 0.5 * self.thorax_depth
        y_c = self.chest_y - self.subcutaneous_mm + a_y
        q = np.sqrt((x / a_x) ** 2 + ((y - y_c) / a_y) ** 2)
        d_thorax = np.minimum((1.0 - q) * min(self.thorax_half_width, a_y), y - (ycw - self.subcutaneous_mm))

        # Breasts: perturbed hemi-ellipsoids anterior of the chest wall.
        wobble = 1.0 + 0.07 * self.shape_field.sample(grid)
        d_breast = np.full(grid.shape, -1e3, dtype=np.float32)
        r_best = np.full(grid.shape, 9.0, dtype=np.float32)
        for b in self.breasts:
            u = (x - b.centre_x) / b.radius_x
            v = np.maximum(ycw - y, 0.0) / b.depth
            w = (z - b.centre_z) / b.radius_z
            r = np.sqrt(u * u + v * v + w * w) * wobble
            d = np.minimum((1.0 - r) * min(b.radius_x, b.depth, b.radius_z), ycw + 10.0 - y)
            np.maximum(d_breast, d, out=d_breast)
            np.minimum(r_best, r, out=r_best)
        d_body = np.maximum(d_thorax, d_breast)

        body = _occ(d_body, h)
        interior = _occ(d_body - self.skin_mm, h)
        skin = body - interior

        anterior = _occ(ycw - y, h)  # 1 in front of the chest wall
        breast = interior * anterior * _occ(d_breast - self.skin_mm, h)
        # FGT: streaky texture, denser centrally, none in subcutaneous/retromammary fat.
        tex = 0.55 * self.fgt_coarse.sample(grid) + 0.45 * self.fgt_fine.sample(grid)
        tex /= np.float32(np.hypot(0.55, 0.45))
        tex += 1.2 * (0.6 - r_best)
        thr = np.float32(ndtri(1.0 - self.density))
        fgt_frac = _sigmoid(4.0 * (tex - thr))
        fgt_frac *= _occ(d_breast - self.skin_mm - 4.0, 2.0 * h)  # subcutaneous fat
        fgt_frac *= _occ(ycw - y - 5.0, 2.0 * h)  # retromammary fat
        fgt = (breast * fgt_frac).astype(np.float32)
        chest = interior * (1.0 - anterior)  # inside the thorax, behind the chest wall
        fat = (interior * anterior - fgt).astype(np.float32)

        depth = y - ycw  # mm behind the chest wall
        muscle_band = _occ(depth, h) * _occ(self.pectoral_mm - depth, h) * _occ(np.abs(x) - 25.0, h)
        muscle = chest * muscle_band
        rest = chest - muscle
        heart = _ellipsoid_occ(x, y, z, self.heart_centre, self.heart_radii, h)
        hx, hy, hz = self.heart_centre
        aorta = _occ(12.0 - np.sqrt((x - hx - 15.0) ** 2 + (y - (hy + 75.0)) ** 2), h) * np.ones_like(z)
        blood = rest * np.maximum(heart, aorta)
        lungs = np.maximum(
            _ellipsoid_occ(x, y, z, (-0.5 * self.thorax_half_width, hy + 10.0, hz + 40.0),
                           (0.33 * self.thorax_half_width, 0.38 * self.thorax_depth, 140.0), h),
            _ellipsoid_occ(x, y, z, (0.5 * self.thorax_half_width, hy + 10.0, hz + 40.0),
                           (0.33 * self.thorax_half_width, 0.38 * self.thorax_depth, 140.0), h),
        )
        lung = (rest - blood) * lungs * _occ(depth - self.pectoral_mm - 12.0, h)
        thorax = rest - blood - lung
        return TissueMaps(
            fgt=fgt,
            fat=_f32(fat),
            skin=_f32(skin),
            muscle=_f32(muscle),
            thorax=_f32(thorax),
            lung=_f32(lung),
            blood=_f32(blood),
            breast=_f32(breast),
        )


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32, copy=False)  # fractions are in [0, 1] by construction


def _occ(dist_mm: np.ndarray, h: float) -> np.ndarray:
    """Soft occupancy from a signed distance (positive inside), one voxel ramp."""
    out = np.multiply(dist_mm, np.float32(1.0 / h), dtype=np.float32)
    out += np.float32(0.5)
    np.maximum(out, 0.0, out=out)
    return np.minimum(out, 1.0, out=out)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * a))).astype(np.float32, copy=False)


def _ellipsoid_occ(x, y, z, centre, radii, h):  # type: ignore[no-untyped-def]
    q = np.sqrt(((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
                + ((z - centre[2]) / radii[2]) ** 2)
    return _occ((1.0 - q) * min(radii), h)


def draw_anatomy(rng: np.random.Generator, detail_mm: float = 4.0) -> Anatomy:
    """Draw one patient's anatomy.

    Args:
        rng: the study generator (consumed deterministically).
        detail_mm: in-plane size of the finest glandular texture (use about one
            to two voxels; finer texture than the grid resolves only costs time).
    """
    half_width = float(rng.uniform(145.0, 170.0))
    depth = float(rng.uniform(175.0, 215.0))
    breast_depth = float(rng.uniform(55.0, 125.0))
    radius_x = float(rng.uniform(55.0, 75.0))
    radius_z = float(rng.uniform(50.0, 72.0))
    separation = float(rng.uniform(80.0, 100.0))
    breasts = tuple(
        Breast(
            centre_x=side * separation * float(rng.uniform(0.95, 1.05)),
            centre_z=float(rng.uniform(-6.0, 6.0)),
            radius_x=radius_x * float(rng.uniform(0.93, 1.07)),
            radius_z=radius_z * float(rng.uniform(0.93, 1.07)),
            depth=breast_depth * float(rng.uniform(0.9, 1.1)),
        )
        for side in (-1.0, 1.0)
    )
    density = float(rng.choice([0.15, 0.3, 0.5, 0.7], p=[0.1, 0.4, 0.4, 0.1]))
    return Anatomy(
        chest_y=0.0,
        chest_curve=float(rng.uniform(25.0, 45.0)),
        thorax_half_width=half_width,
        thorax_depth=depth,
        subcutaneous_mm=float(rng.uniform(6.0, 14.0)),
        skin_mm=float(rng.uniform(1.5, 2.5)),
        pectoral_mm=float(rng.uniform(8.0, 15.0)),
        density=density,
        breasts=breasts,  # type: ignore[arg-type]
        heart_centre=(float(rng.uniform(5.0, 25.0)), 0.42 * depth, float(rng.uniform(-60.0, -35.0))),
        heart_radii=(float(rng.uniform(55.0, 65.0)), float(rng.uniform(45.0, 55.0)), 55.0),
        shape_field=draw_field(rng, (60.0, 60.0, 60.0)),
        fgt_coarse=draw_field(rng, (14.0, 30.0, 14.0), BREAST_EXTENT_MM),
        fgt_fine=draw_field(rng, (detail_mm, 2.5 * detail_mm, detail_mm), BREAST_EXTENT_MM),
        thorax_texture=draw_field(rng, (20.0, 20.0, 20.0)),
    )
