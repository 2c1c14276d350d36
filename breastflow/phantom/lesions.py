"""Breast lesions: shape, placement inside fibroglandular tissue, rasterisation.

A :class:`Lesion` lives in patient millimetres (so it renders identically on
the T1 and T2 grids). Its surface is a rotated ellipsoid whose radius is
modulated per direction ``n``:

    rho(n) = 1 + sum_j a_j cos(f_j (n . u_j) + phi_j) + sum_s L_s max(n . v_s, 0)^p

Benign lesions are smooth ovals (no lobulation, no spicules); malignant ones
are lobulated with thin spicules (``p`` ~ 60-120, i.e. a few mm wide). Large
malignant lesions may carry a necrotic core (inner ellipsoid) that does not
enhance, which produces rim enhancement. Lesions are placed at random
FGT-rich points deep enough inside a breast for the whole lesion to fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from breastflow.phantom.anatomy import Anatomy
from breastflow.phantom.fields import SmoothField, draw_field
from breastflow.phantom.geometry import Grid, sub_grid
from breastflow.phantom.kinetics import Kinetics, draw_curve_type, draw_lesion_kinetics
from breastflow.phantom.vessels import vessel_occupancy
from breastflow.vocabulary import CurveType, LesionClass

PLACEMENT_STEP_MM = 4.0


@dataclass(frozen=True)
class Lesion:
    """One lesion in patient space (LPS mm).

    Attributes:
        lesion_class: benign or malignant.
        curve_type: delayed-phase kinetic shape.
        kinetics: EMM parameters of the enhancing part.
        centre: LPS ``(x, y, z)`` mm.
        radii: ellipsoid semi-axes in the lesion frame (mm).
        rotation: 3x3 matrix, lesion frame = ``rotation @ (p - centre)``.
        lobe_dirs, lobe_amps, lobe_freqs, lobe_phases: lobulation terms ``(J, 3)``, ``(J,)`` ...
        spike_dirs, spike_lengths: spicules ``(S, 3)`` and relative lengths ``(S,)``.
        spike_power: angular sharpness ``p`` of the spicules.
        core_fraction: necrotic core size relative to the lesion (0 = none).
        t1_ratio: pre-contrast signal relative to FGT (slight T1 difference).
        t2_ratio: T2 signal relative to FGT.
        texture: smooth field modulating enhancement inside the lesion.
    """

    lesion_class: LesionClass
    curve_type: CurveType
    kinetics: Kinetics
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    rotation: np.ndarray
    lobe_dirs: np.ndarray
    lobe_amps: np.ndarray
    lobe_freqs: np.ndarray
    lobe_phases: np.ndarray
    spike_dirs: np.ndarray
    spike_lengths: np.ndarray
    spike_power: float
    core_fraction: float
    t1_ratio: float
    t2_ratio: float
    texture: SmoothField

    @property
    def necrotic(self) -> bool:
        return self.core_fraction > 0.0

    def extent_mm(self) -> float:
        """Radius of a sphere that contains the whole lesion (mm)."""
        lobes = float(np.abs(self.lobe_amps).sum())
        spikes = float(self.spike_lengths.max()) if self.spike_lengths.size else 0.0
        return max(self.radii) * (1.0 + lobes + spikes) + 1.0

    def rasterise(self, grid: Grid) -> LesionRaster | None:
        """Soft occupancy, necrotic core and enhancement texture in the lesion's bounding box.

        Returns ``None`` when the lesion does not intersect ``grid``.
        """
        ext = self.extent_mm()
        lo, hi = [], []
        for axis, c in zip((0, 1, 2), (self.centre[2], self.centre[1], self.centre[0])):
            mm = grid.axis_mm(axis)
            idx = np.nonzero(np.abs(mm - c) <= ext + grid.spacing_zyx[axis])[0]
            if idx.size == 0:
                return None
            lo.append(int(idx[0]))
            hi.append(int(idx[-1]) + 1)
        z = grid.axis_mm(0)[lo[0]:hi[0]] - self.centre[2]
        y = grid.axis_mm(1)[lo[1]:hi[1]] - self.centre[1]
        x = grid.axis_mm(2)[lo[2]:hi[2]] - self.centre[0]
        zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
        p = np.stack([xx, yy, zz], axis=-1) @ self.rotation.T  # lesion frame, (..., 3)
        dist = np.linalg.norm(p, axis=-1)
        n = p / np.maximum(dist, 1e-6)[..., None]
        q = np.linalg.norm(p / np.asarray(self.radii), axis=-1)
        rho = np.ones_like(q)
        for u, a, f, ph in zip(self.lobe_dirs, self.lobe_amps, self.lobe_freqs, self.lobe_phases):
            rho += a * np.cos(f * (n @ u) + ph)
        for v, length in zip(self.spike_dirs, self.spike_lengths):
            rho += length * np.maximum(n @ v, 0.0) ** self.spike_power
        h = min(grid.spacing_zyx)
        r_min = min(self.radii)
        occupancy = np.clip(0.5 + (rho - q) * r_min / h, 0.0, 1.0).astype(np.float32)
        if self.necrotic:
            core = np.clip(0.5 + (self.core_fraction - q) * r_min / h, 0.0, 1.0).astype(np.float32)
        else:
            core = np.zeros_like(occupancy)
        sub = sub_grid(grid, lo, hi)
        texture = 1.0 + 0.08 * self.texture.sample(sub)
        if self.lesion_class is LesionClass.MALIGNANT:  # brighter rim
            texture *= (0.92 + 0.16 * np.clip(q / rho, 0.0, 1.0)).astype(np.float32)
        box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        return LesionRaster(box=box, occupancy=occupancy, core=core, texture=texture.astype(np.float32))


@dataclass(frozen=True)
class LesionRaster:
    """A lesion sampled on a grid, restricted to its bounding box ``box``.

    Attributes:
        box: slices ``(k, r, c)`` into the grid's ``(n_slices, rows, cols)`` array.
        occupancy: lesion fraction per voxel in the box, float32.
        core: necrotic-core fraction per voxel (subset of occupancy), float32.
        texture: multiplicative enhancement heterogeneity, float32 (~1).
    """

    box: tuple[slice, slice, slice]
    occupancy: np.ndarray
    core: np.ndarray
    texture: np.ndarray


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    return q * np.sign(np.diag(r))


def draw_lesions(
    rng: np.random.Generator,
    anatomy: Anatomy,
    times: np.ndarray,
    z_range: tuple[float, float],
    min_radius_mm: float,
    t1_scale: float = 1.0,
) -> list[Lesion]:
    """Draw 0-2 lesions (25 % healthy, 55 % one, 20 % multifocal) inside the breasts.

    Args:
        rng: study generator.
        anatomy: the patient; lesions are centred at FGT-rich points deep inside a breast.
        times: post-contrast phase times (min) used to give each curve its shape.
        z_range: LPS z interval (mm) covered by the pre-contrast slab.
        min_radius_mm: smallest semi-axis, so lesions span a few voxels on coarse grids.
        t1_scale: multiplies each lesion's pre-contrast ratio to FGT after it is drawn
            (:attr:`breastflow.phantom.config.PhantomConfig.lesion_t1_scale`).
    """
    n = int(rng.choice([0, 1, 2], p=[0.25, 0.55, 0.20]))
    if n == 0:
        return []
    candidates, depth, fgt = _placement_candidates(anatomy, z_range)
    lesions: list[Lesion] = []
    for _ in range(n):
        lesion = _draw_one(rng, times, min_radius_mm)
        if t1_scale != 1.0:
            lesion = _replace(lesion, t1_ratio=lesion.t1_ratio * t1_scale)
        ext = lesion.extent_mm()
        apart = np.ones(depth.shape, dtype=bool)
        for other in lesions:
            gap = np.linalg.norm(candidates - np.asarray(other.centre), axis=1)
            apart &= gap > ext + other.extent_mm() + 4.0
        ok = apart & (depth >= ext + 2.0)
        rich = ok & (fgt > 0.5)
        pool = np.nonzero(rich if rich.any() else ok)[0]
        if pool.size == 0:  # no room for the whole lesion: shrink it to fit the deepest free point
            free = np.nonzero(apart & (depth > 4.0))[0]
            if free.size == 0:
                continue
            best = int(free[np.argmax(depth[free])])
            lesion = _scaled(lesion, max(0.3, (depth[best] - 2.0) / ext))
            pool = np.array([best])
        centre = candidates[int(pool[rng.integers(pool.size)])] + rng.uniform(-0.4, 0.4, 3) * PLACEMENT_STEP_MM
        lesions.append(_with_centre(lesion, centre))
    return lesions


def _placement_candidates(
    anatomy: Anatomy, z_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breast voxel centres on a 4 mm lattice over the slab, with depth below the surface and FGT share.

    Only the breast fields are evaluated (:meth:`Anatomy.breast_fields`, the
    same values as :meth:`Anatomy.tissue_maps`).
    """
    s = PLACEMENT_STEP_MM
    nz = int((z_range[1] - z_range[0]) // s) + 1
    y0 = float(np.floor(anatomy.anterior_extent() / s) * s) - s
    y1 = anatomy.chest_y + anatomy.chest_curve + s
    grid = Grid(rows=int((y1 - y0) // s) + 1, cols=int(440 // s), n_slices=max(nz, 1), pixel_spacing=(s, s),
                slice_spacing=s, slice_thickness=s, origin=(-220.0, y0, z_range[0]))
    fields_ = anatomy.breast_fields(grid)
    breast = fields_.breast_fraction()
    fgt = fields_.fgt_fraction(anatomy.fgt_threshold, vessel_occupancy(anatomy.vessels, grid))
    inside = breast > 0.5
    depth = _depth_inside(inside, s)
    # stay away from the slab's first/last slices as well
    zmm = grid.axis_mm(0)
    zdepth = np.minimum(zmm - z_range[0], z_range[1] - zmm)[:, None, None]
    depth = np.minimum(depth, zdepth)
    k, r, c = np.nonzero(inside)
    points = np.stack([grid.axis_mm(2)[c], grid.axis_mm(1)[r], grid.axis_mm(0)[k]], axis=1)
    return points, depth[k, r, c], fgt[k, r, c] / np.maximum(breast[k, r, c], 1e-6)


def _depth_inside(inside: np.ndarray, step_mm: float) -> np.ndarray:
    """Euclidean distance (mm) of each ``inside`` voxel to the nearest outside one, 0 outside.

    Computed on the bounding box of ``inside`` grown by one voxel (within the
    array): that border is all outside voxels and holds every inside voxel's
    nearest outside voxel, so the result equals ``distance_transform_edt`` on
    the whole array.
    """
    depth = np.zeros(inside.shape, dtype=np.float64)
    nz = np.nonzero(inside)
    if nz[0].size == 0:
        return depth
    box = tuple(slice(max(int(i.min()) - 1, 0), min(int(i.max()) + 2, n)) for i, n in zip(nz, inside.shape))
    depth[box] = ndimage.distance_transform_edt(inside[box], sampling=step_mm)
    return depth


def _draw_one(rng: np.random.Generator, times: np.ndarray, min_radius_mm: float) -> Lesion:
    cls = LesionClass.MALIGNANT if rng.random() < 0.65 else LesionClass.BENIGN
    curve = draw_curve_type(rng, cls)
    kinetics = draw_lesion_kinetics(rng, curve, times)
    malignant = cls is LesionClass.MALIGNANT
    mean_r = float(rng.uniform(6.0, 15.0) if malignant else rng.uniform(4.0, 9.0))
    mean_r = max(mean_r, min_radius_mm)
    aspect = rng.uniform(0.75, 1.25, size=3) if malignant else np.array([1.3, 1.0, 0.85]) * rng.uniform(0.9, 1.1, 3)
    radii = tuple(float(v) for v in mean_r * aspect / np.cbrt(np.prod(aspect)))
    n_lobes = int(rng.integers(3, 6)) if malignant else 0
    n_spikes = int(rng.integers(4, 12)) if malignant else 0
    core = float(rng.uniform(0.4, 0.6)) if malignant and mean_r >= 8.0 and rng.random() < 0.4 else 0.0
    return Lesion(
        lesion_class=cls,
        curve_type=curve,
        kinetics=kinetics,
        centre=(0.0, 0.0, 0.0),
        radii=radii,  # type: ignore[arg-type]
        rotation=_rotation(rng),
        lobe_dirs=_unit(rng, n_lobes),
        lobe_amps=rng.uniform(0.04, 0.1, n_lobes),
        lobe_freqs=rng.uniform(2.0, 5.0, n_lobes),
        lobe_phases=rng.uniform(0.0, 2 * np.pi, n_lobes),
        spike_dirs=_unit(rng, n_spikes),
        spike_lengths=rng.uniform(0.4, 1.0, n_spikes),
        spike_power=float(rng.uniform(60.0, 120.0)),
        core_fraction=core,
        t1_ratio=float(rng.uniform(0.84, 0.94) if malignant else rng.uniform(0.9, 1.02)),
        t2_ratio=float(rng.uniform(1.0, 1.4) if malignant else rng.uniform(1.6, 2.4)),
        texture=draw_field(rng, (5.0, 5.0, 5.0), ((-40.0, 40.0),) * 3),
    )


def _with_centre(lesion: Lesion, centre: np.ndarray) -> Lesion:
    c = tuple(float(v) for v in centre)
    texture = SmoothField(lesion.texture.values,
                          (c[2] - 40.0, c[1] - 40.0, c[0] - 40.0), lesion.texture.step)
    return _replace(lesion, centre=c, texture=texture)


def _scaled(lesion: Lesion, scale: float) -> Lesion:
    return _replace(lesion, radii=tuple(r * scale for r in lesion.radii))


def _replace(lesion: Lesion, **changes: object) -> Lesion:
    from dataclasses import replace

    return replace(lesion, **changes)  # type: ignore[arg-type]
