"""Static anatomy of a prone bilateral breast MRI: tissue fraction maps in patient mm.

The body is described by continuous shapes in LPS millimetres (see
:mod:`breastflow.phantom.geometry` for axes), modelled on axial prone
Duke-Breast-Cancer-MRI slices:

* **Breasts** hang anteriorly from a chest wall that bows forward at the
  sternum and recedes laterally. Each is a perturbed half-ellipsoid that
  tapers towards the nipple (a teardrop in axial section), tilted slightly
  laterally, wrapped in skin, with a nipple at the apex.
* **Fibroglandular tissue (FGT)** fills a retro-areolar cone around the
  breast axis, absent in the subcutaneous and retromammary fat. Its texture
  mixes lobular clumps (coarse smooth noise) with duct-like strands: fine
  noise that is long along the anterior-posterior axis and warped so its
  streaks converge on the nipple (:meth:`SmoothField.sample_converging`);
  thin sheets along the zero set of that field give feathery margins. The
  threshold is calibrated per patient so the FGT share of breast volume
  matches the density category (BI-RADS a-d).
* **Chest wall**: pectoralis band (thickest mid-laterally), a rib layer
  (ribs run obliquely, so axial slices cut them into segments along the arc;
  intercostal muscle between them), the sternum at the midline.
* **Thorax**: lungs (dark), an irregular, rotated heart (myocardium around
  the blood pool) and descending aorta; the FOV usually cuts them off.
* **Vessels** (:mod:`breastflow.phantom.vessels`): internal mammary and
  lateral thoracic vessels plus a few tortuous vessels per breast, part of
  the blood pool.

:meth:`Anatomy.tissue_maps` samples the model on any :class:`Grid` and returns
per-voxel tissue fractions with soft (partial-volume) edges, so the same
anatomy renders consistently on the T1 and T2 grids. One patient's random
parameters are drawn by :func:`breastflow.phantom.anatomy_draw.draw_anatomy`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from breastflow.phantom.fields import SmoothField
from breastflow.phantom.geometry import Grid, slab, sub_grid
from breastflow.phantom.occupancy import (
    add_ellipsoid,
    clip_fraction,
    ellipsoid_occupancy,
    occupancy,
    sigmoid,
)
from breastflow.phantom.vessels import Vessel, vessel_occupancy

# Region of patient space in which breast texture fields are drawn (z, y, x mm).
BREAST_EXTENT_MM = ((-120.0, 120.0), (-230.0, 80.0), (-230.0, 230.0))
CHUNK_VOXELS = 1 << 21
NIPPLE_MM = (5.0, 6.0)  # nipple radius and protrusion


@dataclass(frozen=True)
class Breast:
    """One breast hanging anteriorly from the chest wall.

    Attributes:
        centre_x: LPS x of the breast axis at the chest wall (negative = patient right).
        centre_z: LPS z of the breast axis.
        radius_x, radius_z: half-width (L-R) and half-height (S-I) in mm at the base.
        depth: anterior extent from the chest wall to the nipple in mm.
        tilt: lateral drift of the axis at the nipple as a fraction of ``depth``
            (positive = away from the midline).
        taper: how much the cross-section narrows towards the nipple beyond the
            ellipsoid (0 = half-ellipsoid, 0.4 = teardrop).
        roundness: exponent ``k`` of the depth term of the surface
            ``u^2 + w^2 + v^k = 1`` (2 = ellipsoid; larger = fuller, U-shaped).
    """

    centre_x: float
    centre_z: float
    radius_x: float
    radius_z: float
    depth: float
    tilt: float = 0.0
    taper: float = 0.0
    roundness: float = 2.0

    def axis_x(self, v: np.ndarray | float) -> np.ndarray | float:
        """LPS x of the breast axis at relative depth ``v`` (0 chest wall, 1 nipple)."""
        return self.centre_x + np.sign(self.centre_x) * self.tilt * self.depth * v

    def frame(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, ycw: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised breast coordinates ``(u, v, w)``; the surface is ``u^2 + w^2 + v^k = 1``.

        ``v`` is the relative depth in front of the chest wall ``ycw`` (LPS y at ``x``),
        ``u`` and ``w`` the lateral and cranio-caudal offsets from the (tilted) axis,
        scaled by the tapering base radii.
        """
        v = np.maximum(ycw - y, 0.0) / np.float32(self.depth)
        shrink = 1.0 - np.float32(self.taper) * v
        u = (x - self.axis_x(v)) / (np.float32(self.radius_x) * shrink)
        w = (z - np.float32(self.centre_z)) / (np.float32(self.radius_z) * shrink)
        return u.astype(np.float32), v.astype(np.float32), w.astype(np.float32)


@dataclass(frozen=True)
class TissueMaps:
    """Per-voxel tissue fractions on one grid, each float32 ``(n_slices, rows, cols)``.

    Fractions are in [0, 1] and, except ``breast``, sum to at most 1 (the rest is air).
    ``blood`` includes the heart, aorta and all vessels; ``bone`` is ribs and sternum.
    """

    fgt: np.ndarray
    fat: np.ndarray
    skin: np.ndarray
    muscle: np.ndarray
    thorax: np.ndarray
    lung: np.ndarray
    blood: np.ndarray
    bone: np.ndarray
    breast: np.ndarray  # breast interior (fgt + fat + vessels inside the breasts), for lesion placement

    def body(self) -> np.ndarray:
        """Total tissue fraction (1 - air)."""
        return (self.fgt + self.fat + self.skin + self.muscle + self.thorax + self.lung + self.blood
                + self.bone)


class _Outline(NamedTuple):
    """Coordinates and signed distances (mm) shared by :meth:`Anatomy.tissue_maps` and
    :meth:`Anatomy.breast_fields`; arrays broadcast to ``(n_slices, rows, cols)``."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    h: float
    ycw: np.ndarray
    wobble: np.ndarray
    d_breast: np.ndarray
    nipples: np.ndarray
    d_body: np.ndarray


@dataclass(frozen=True)
class BreastFields:
    """Breast-only maps on one grid, float32 ``(n_slices, rows, cols)`` (see :meth:`Anatomy.breast_fields`).

    Attributes:
        breast: breast interior fraction (as ``TissueMaps.breast`` before clipping).
        interior: body interior (inside the skin), which vessels displace.
        level: glandular texture level (:meth:`Anatomy.fgt_level`).
        subcutaneous, retromammary: factors that keep the fat layers free of FGT.
    """

    breast: np.ndarray
    interior: np.ndarray
    level: np.ndarray
    subcutaneous: np.ndarray
    retromammary: np.ndarray

    def breast_fraction(self) -> np.ndarray:
        """``TissueMaps.breast``."""
        return clip_fraction(self.breast)

    def fgt_fraction(self, threshold: float, vessel: np.ndarray | None = None) -> np.ndarray:
        """``TissueMaps.fgt`` for FGT threshold ``threshold``, vessels (lumen fraction, same grid) removed."""
        frac = sigmoid(4.0 * (self.level - np.float32(threshold)))
        frac *= self.subcutaneous
        frac *= self.retromammary
        fgt = self.breast * frac
        if vessel is not None:
            fgt = fgt * (1.0 - vessel * self.interior)
        return clip_fraction(fgt)


@dataclass(frozen=True)
class Anatomy:
    """A drawn patient. Build with :func:`~breastflow.phantom.anatomy_draw.draw_anatomy`; sample with :meth:`tissue_maps`.

    Attributes:
        chest_y: LPS y of the anterior chest wall at the midline (mm).
        chest_curve: how far (mm) the chest wall recedes at ``x = +-thorax_half_width``.
        thorax_half_width, thorax_depth: thorax ellipse semi-axis (x) and full A-P depth (mm).
        subcutaneous_mm: pre-sternal / subcutaneous fat layer thickness.
        skin_mm: skin thickness.
        pectoral_mm: pectoral muscle thickness (mid-lateral maximum).
        rib_mm, rib_period_mm, rib_slope: rib layer thickness, rib + intercostal
            period along z, and z drop of a rib per mm of lateral distance.
        density: target FGT share of breast volume (BI-RADS a-d ~ 0.15-0.7).
        fgt_threshold: texture level above which tissue is glandular (calibrated to ``density``).
        breasts: right and left breast.
        heart_centre, heart_radii: heart ellipsoid (x, y, z) in mm.
        heart_angle: in-plane rotation of the heart's long axis (radians).
        myocardium_mm: heart wall thickness.
        vessels: breast and chest-wall vessels.
        shape_field, fgt_coarse, fgt_fine, thorax_texture, bpe_texture: smooth random fields.
    """

    chest_y: float
    chest_curve: float
    thorax_half_width: float
    thorax_depth: float
    subcutaneous_mm: float
    skin_mm: float
    pectoral_mm: float
    rib_mm: float
    rib_period_mm: float
    rib_slope: float
    density: float
    fgt_threshold: float
    breasts: tuple[Breast, Breast]
    heart_centre: tuple[float, float, float]
    heart_radii: tuple[float, float, float]
    heart_angle: float
    myocardium_mm: float
    vessels: tuple[Vessel, ...]
    shape_field: SmoothField
    fgt_coarse: SmoothField
    fgt_fine: SmoothField
    thorax_texture: SmoothField
    bpe_texture: SmoothField

    def chest_wall_y(self, x: np.ndarray | float) -> np.ndarray | float:
        """LPS y of the anterior chest wall (behind the breasts) at lateral position ``x``."""
        return self.chest_y + self.chest_curve * (x / self.thorax_half_width) ** 2

    def nipple(self, breast: Breast) -> tuple[float, float, float]:
        """LPS ``(x, y, z)`` of the breast apex (base of the nipple)."""
        x = float(breast.axis_x(1.0))
        return (x, float(self.chest_wall_y(x)) - breast.depth, breast.centre_z)

    def anterior_extent(self) -> float:
        """Most anterior LPS y reached by either breast incl. the nipple (mm), for FOV placement."""
        return min(self.nipple(b)[1] for b in self.breasts) - NIPPLE_MM[1]

    def width(self) -> float:
        """L-R extent of the breasts (mm), for fitting the FOV."""
        return max(abs(b.centre_x) + 1.08 * b.radius_x + self.skin_mm for b in self.breasts) * 2.0

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
            self._tissue_maps(slab(grid, k0, k1), {n: a[k0:k1] for n, a in out.items()})
        return TissueMaps(**out)

    def pectoral_thickness(self, x: np.ndarray) -> np.ndarray:
        """Pectoralis thickness (mm) at lateral position ``x``: none at the sternum, thickest mid-laterally."""
        s = np.clip(np.abs(x) / self.thorax_half_width, 0.0, 1.0)
        return self.pectoral_mm * (0.35 + 0.75 * np.sin(np.pi * np.minimum(s * 1.15, 1.0)))

    def _outline(self, grid: Grid, with_nipples: bool = True) -> _Outline:
        z = grid.axis_mm(0).astype(np.float32)[:, None, None]
        y = grid.axis_mm(1).astype(np.float32)[None, :, None]
        x = grid.axis_mm(2).astype(np.float32)[None, None, :]
        h = float(np.mean(grid.pixel_spacing))
        ycw = self.chest_wall_y(x).astype(np.float32)  # (1, 1, X)

        # Thorax: ellipse in x-y (slightly narrowing towards the feet), cut anteriorly.
        a_x = self.thorax_half_width * (1.0 + 0.0008 * z)
        a_y = 0.5 * self.thorax_depth
        y_c = self.chest_y - self.subcutaneous_mm + a_y
        q = np.sqrt((x / a_x) ** 2 + ((y - y_c) / a_y) ** 2)
        d_thorax = np.minimum((1.0 - q) * min(self.thorax_half_width, a_y), y - (ycw - self.subcutaneous_mm))

        # Breasts: perturbed tapering half-ellipsoids anterior of the chest wall, plus nipples.
        wobble = 1.0 + 0.06 * self.shape_field.sample(grid)
        d_breast = np.full(grid.shape, -1e3, dtype=np.float32)
        nipples = np.zeros(grid.shape, dtype=np.float32)
        for b in self.breasts:
            u, v, w = b.frame(x, y, z, ycw)
            r = np.sqrt(u * u + w * w + v ** np.float32(b.roundness))
            r *= 1.0 + (wobble - 1.0) * (1.0 - v * v)  # irregular outline, nipple stays on the apex
            d = np.minimum((1.0 - r) * min(b.radius_x, b.depth, b.radius_z), ycw + 10.0 - y)
            np.maximum(d_breast, d, out=d_breast)
            if with_nipples:
                nx, ny, nz = self.nipple(b)
                radius, length = NIPPLE_MM
                add_ellipsoid(nipples, x, y, z, (nx, ny + self.skin_mm, nz), (radius, length + self.skin_mm, radius), h)
        d_body = np.maximum(d_thorax, d_breast)
        return _Outline(x=x, y=y, z=z, h=h, ycw=ycw, wobble=wobble, d_breast=d_breast, nipples=nipples,
                        d_body=d_body)

    def breast_fields(self, grid: Grid) -> BreastFields:
        """The breast-only quantities of :meth:`tissue_maps` on ``grid``, whole grid at once.

        For coarse lattices (FGT calibration, lesion placement): skips the chest
        wall, thorax and vessels; the values equal those :meth:`tissue_maps` uses.
        """
        o = self._outline(grid, with_nipples=False)
        interior = occupancy(o.d_body - self.skin_mm, o.h)
        anterior = occupancy(o.ycw - o.y, o.h)
        breast = interior * anterior * occupancy(o.d_breast - self.skin_mm, o.h)
        return BreastFields(breast=breast, interior=interior, level=self.fgt_level(grid, o.ycw),
                            subcutaneous=occupancy(o.d_breast - self.skin_mm - 3.0, 2.0 * o.h),
                            retromammary=occupancy(o.ycw - o.y - 9.0, 2.0 * o.h))

    def _tissue_maps(self, grid: Grid, out: dict[str, np.ndarray]) -> None:
        """Write the fractions of ``grid`` (clipped to [0, 1]) into ``out``'s float32 arrays, by TissueMaps name."""
        o = self._outline(grid)
        x, y, z, h, ycw, wobble = o.x, o.y, o.z, o.h, o.ycw, o.wobble
        d_breast, nipples, d_body = o.d_breast, o.nipples, o.d_body

        body = np.maximum(occupancy(d_body, h), nipples)
        interior = occupancy(d_body - self.skin_mm, h)
        skin = body - interior

        anterior = occupancy(ycw - y, h)  # 1 in front of the chest wall
        breast = interior * anterior * occupancy(d_breast - self.skin_mm, h)
        fgt = breast * self._fgt_fraction(grid, ycw, d_breast, h)
        chest = interior * (1.0 - anterior)  # inside the thorax, behind the chest wall
        fat = interior * anterior - fgt

        # Chest wall: pectoralis, then ribs / intercostal muscle / sternum.
        depth = y - ycw  # mm behind the chest wall
        pect = self.pectoral_thickness(x).astype(np.float32)
        pect = np.where(np.abs(x) < 22.0, np.float32(0.0), pect)
        muscle = chest * occupancy(depth, h) * occupancy(pect - depth, h)
        layer = chest * occupancy(depth - pect, h) * occupancy(pect + self.rib_mm - depth, h)
        phase = 2.0 * np.pi * (z + self.rib_slope * np.abs(x)) / self.rib_period_mm
        ribs = np.clip(2.5 * (np.cos(phase) - 0.1), 0.0, 1.0)
        ribs = np.maximum(ribs, occupancy(20.0 - np.abs(x), h))  # sternum
        bone = layer * ribs
        muscle = muscle + layer - bone  # intercostal muscle
        rest = chest * occupancy(depth - pect - self.rib_mm, h)

        # Heart (rotated, irregular ellipsoid: myocardium around blood), aorta, lungs.
        hx, hy, hz = self.heart_centre
        rx, ry, rz = self.heart_radii
        ca, sa = np.cos(self.heart_angle), np.sin(self.heart_angle)
        xr, yr = (x - hx) * ca + (y - hy) * sa, -(x - hx) * sa + (y - hy) * ca
        qh = np.sqrt((xr / rx) ** 2 + (yr / ry) ** 2 + ((z - hz) / rz) ** 2) * wobble * wobble
        d_heart = (1.0 - qh) * min(rx, ry, rz)
        heart = rest * occupancy(d_heart, h)
        heart_blood = rest * occupancy(d_heart - self.myocardium_mm, h)
        aorta = rest * occupancy(12.0 - np.sqrt((x - hx - 10.0) ** 2 + (y - (hy + ry + 45.0)) ** 2), h)
        blood = np.maximum(heart_blood, aorta)
        muscle = muscle + heart - heart_blood  # myocardium
        lungs = np.maximum(
            ellipsoid_occupancy(x, y, z, (-0.5 * self.thorax_half_width, hy + 20.0, hz + 60.0),
                           (0.36 * self.thorax_half_width, 0.4 * self.thorax_depth, 150.0), h),
            ellipsoid_occupancy(x, y, z, (0.5 * self.thorax_half_width, hy + 20.0, hz + 60.0),
                           (0.36 * self.thorax_half_width, 0.4 * self.thorax_depth, 150.0), h),
        )
        lung = np.clip(rest - np.maximum(heart, aorta), 0.0, None) * lungs
        thorax = np.clip(rest - np.maximum(heart, aorta) - lung, 0.0, None)

        # Vessels displace whatever tissue they run through (inside the body only).
        vessel = vessel_occupancy(self.vessels, grid) * interior
        keep = 1.0 - vessel
        values = {"fgt": fgt * keep, "fat": np.clip(fat, 0.0, None) * keep, "skin": skin, "muscle": muscle * keep,
                  "thorax": thorax * keep, "lung": lung * keep, "blood": blood * keep + vessel, "bone": bone * keep,
                  "breast": breast}
        for name, value in values.items():
            np.clip(value, 0.0, 1.0, out=out[name])

    def fgt_level(self, grid: Grid, ycw: np.ndarray) -> np.ndarray:
        """Glandular texture level (before thresholding) on ``grid``, float32 ``(n_slices, rows, cols)``.

        Central cone around each breast axis (retro-areolar, narrowing to the
        nipple) plus lobular clumps and nipple-converging duct-like streaks;
        ``-inf``-like (-9) outside both breasts' boxes.
        """
        level = np.full(grid.shape, -9.0, dtype=np.float32)
        y_mm, x_mm = grid.axis_mm(1), grid.axis_mm(2)
        for b in self.breasts:
            nipple = self.nipple(b)
            x_lo, x_hi = b.centre_x - 1.3 * b.radius_x, b.centre_x + 1.3 * b.radius_x
            cols = np.nonzero((x_mm >= min(x_lo, nipple[0] - 10)) & (x_mm <= max(x_hi, nipple[0] + 10)))[0]
            rows = np.nonzero((y_mm >= nipple[1] - 2 * NIPPLE_MM[1]) & (y_mm <= self.chest_y + self.chest_curve))[0]
            if cols.size == 0 or rows.size == 0:
                continue
            box = sub_grid(grid, (0, int(rows[0]), int(cols[0])),
                           (grid.n_slices, int(rows[-1]) + 1, int(cols[-1]) + 1))
            z = box.axis_mm(0).astype(np.float32)[:, None, None]
            y = box.axis_mm(1).astype(np.float32)[None, :, None]
            x = box.axis_mm(2).astype(np.float32)[None, None, :]
            u, v, w = b.frame(x, y, z, self.chest_wall_y(x).astype(np.float32))
            radial = np.sqrt(u * u + w * w) / np.sqrt(np.maximum(1.0 - v ** np.float32(b.roundness), 0.05))
            # 1 on the axis, 0 near the skin; thinner next to the chest wall and towards the nipple
            cone = 1.0 - radial - 1.2 * (v - 0.5) ** 2
            coarse = self.fgt_coarse.sample(box)
            ducts = self.fgt_fine.sample_converging(box, nipple, b.depth)
            strands = np.exp(-((ducts / 0.35) ** 2))  # thin sheets along the zero set: feathery strands
            tex = 2.0 * cone + 0.8 * coarse + 0.4 * ducts + 0.8 * strands
            region = level[:, int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]
            np.maximum(region, tex, out=region)
        return level

    def _fgt_fraction(self, grid: Grid, ycw: np.ndarray, d_breast: np.ndarray, h: float) -> np.ndarray:
        frac = sigmoid(4.0 * (self.fgt_level(grid, ycw) - np.float32(self.fgt_threshold)))
        frac *= occupancy(d_breast - self.skin_mm - 3.0, 2.0 * h)  # subcutaneous fat
        frac *= occupancy(ycw - grid.axis_mm(1).astype(np.float32)[None, :, None] - 9.0, 2.0 * h)  # retromammary fat
        return frac
