"""Blood vessels of the breast and chest wall as tubes along smooth polylines (patient mm).

Contrast-enhanced breast MRI shows vessels that enhance early and strongly:
the internal mammary vessels beside the sternum and the lateral thoracic
vessels along the lateral chest wall (both running superior-inferior, so they
are dots on axial slices), and a few tortuous vessels inside each breast
running from the chest wall towards the nipple. They are part of the blood
pool (same kinetics as the heart), never lesions: they are what makes the
pre -> post-contrast task non-trivial outside the lesions.

A :class:`Vessel` is a centre line sampled every ``POINT_STEP_MM`` with a
radius per point; :func:`vessel_occupancy` rasterises tubes on any
:class:`Grid` with a one-voxel partial-volume ramp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from breastflow.phantom.geometry import Grid

if TYPE_CHECKING:  # anatomy imports this module; the drawing functions only read attributes
    from breastflow.phantom.anatomy import Anatomy, Breast

POINT_STEP_MM = 0.5


@dataclass(frozen=True)
class Vessel:
    """One vessel segment.

    Attributes:
        points: centre line, ``(N, 3)`` LPS ``(x, y, z)`` mm, consecutive points <= 0.5 mm apart.
        radii: lumen radius per point, ``(N,)`` mm.
    """

    points: np.ndarray
    radii: np.ndarray

    def __post_init__(self) -> None:
        if self.points.ndim != 2 or self.points.shape[1] != 3 or self.radii.shape != (self.points.shape[0],):
            raise ValueError(f"points must be (N, 3) and radii (N,), got {self.points.shape}, {self.radii.shape}")


def tortuous_path(rng: np.random.Generator, start: np.ndarray, end: np.ndarray,
                  amplitude_mm: tuple[float, float], wavelength_mm: tuple[float, float]) -> np.ndarray:
    """A wavy centre line from ``start`` to ``end`` (LPS xyz mm), points ``POINT_STEP_MM`` apart.

    Two sinusoidal displacements perpendicular to the chord, each with its own
    amplitude and wavelength drawn from the given ranges, vanish at both ends.

    Returns:
        ``(N, 3)`` float64 points.
    """
    chord = end - start
    length = float(np.linalg.norm(chord))
    axis = chord / max(length, 1e-6)
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    n1 = np.cross(axis, helper)
    n1 /= np.linalg.norm(n1)
    n2 = np.cross(axis, n1)
    t = np.linspace(0.0, 1.0, max(2, int(np.ceil(2.0 * length / POINT_STEP_MM)) + 1))[:, None]
    envelope = np.sin(np.pi * t) ** 0.5
    path = start + t * chord
    for normal in (n1, n2):
        amp = float(rng.uniform(*amplitude_mm))
        cycles = length / float(rng.uniform(*wavelength_mm))
        path = path + normal * (amp * envelope * np.sin(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi)))
    return _resample(path)


def _resample(path: np.ndarray) -> np.ndarray:
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(s[-1] / POINT_STEP_MM)) + 1)
    u = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(u, s, path[:, a]) for a in range(3)], axis=1)


def tapered(points: np.ndarray, r_start: float, r_end: float) -> Vessel:
    """A vessel along ``points`` whose radius shrinks linearly from ``r_start`` to ``r_end``."""
    return Vessel(points=points, radii=np.linspace(r_start, r_end, points.shape[0]))


def vessel_occupancy(vessels: tuple[Vessel, ...], grid: Grid) -> np.ndarray:
    """Lumen fraction per voxel of ``grid``, float32 ``(n_slices, rows, cols)`` in [0, 1].

    Each voxel gets ``clip(0.5 + (r - d) / h, 0, 1)`` for its nearest centre-line
    point at distance ``d`` (``h`` the finest grid spacing), maximised over vessels.
    Only a small box around each point is touched, so the cost is proportional
    to the total vessel length, not to the grid size. On coarse grids every
    ``stride``-th point is used (points at most ``s = h / 2`` apart), which
    overestimates a distance ``d`` by at most ``s^2 / (8 d)``: a few
    hundredths of a voxel in the partial-volume ramp.

    Vectorised over points: every point's box is read through one stencil of
    the largest box's size (entries outside a point's own box are dropped), the
    positive occupancies are scattered with ``np.maximum.at``.
    """
    out = np.zeros(grid.shape, dtype=np.float32)
    if not vessels:
        return out
    spacing = np.asarray(grid.spacing_zyx)
    h = float(spacing.min())
    axes = [grid.axis_mm(a) for a in range(3)]
    origin = np.array([axes[0][0], axes[1][0], axes[2][0]])
    shape = np.asarray(grid.shape)
    stride = max(1, int(0.5 * h / POINT_STEP_MM))
    zyx = np.concatenate([np.concatenate([v.points[::stride], v.points[-1:]])[:, ::-1] for v in vessels])
    radii = np.concatenate([np.concatenate([v.radii[::stride], v.radii[-1:]]) for v in vessels])
    reach = radii + h
    lo = np.ceil((zyx - reach[:, None] - origin) / spacing).astype(np.intp)
    hi = np.floor((zyx + reach[:, None] - origin) / spacing).astype(np.intp) + 1
    keep = np.all((hi > 0) & (lo < shape), axis=1)
    zyx, radii = zyx[keep], radii[keep]
    lo, hi = np.maximum(lo[keep], 0), np.minimum(hi[keep], shape)
    if zyx.shape[0] == 0:
        return out
    size = (hi - lo).max(axis=0)
    stencil = np.stack(np.meshgrid(*(np.arange(n) for n in size), indexing="ij"), axis=-1).reshape(-1, 3)
    inv_h = 1.0 / h
    flat_out = out.reshape(-1)
    batch = max(1, (1 << 20) // stencil.shape[0])
    for p0 in range(0, zyx.shape[0], batch):
        p, r = zyx[p0:p0 + batch], radii[p0:p0 + batch]
        idx = lo[p0:p0 + batch, None, :] + stencil[None, :, :]  # (P, S, 3)
        inside = np.all(idx < hi[p0:p0 + batch, None, :], axis=2)
        idx = np.minimum(idx, shape - 1)
        dz = axes[0][idx[..., 0]] - p[:, None, 0]
        dy = axes[1][idx[..., 1]] - p[:, None, 1]
        dx = axes[2][idx[..., 2]] - p[:, None, 2]
        occ = (0.5 + r[:, None] * inv_h) - np.sqrt(dz * dz + dy * dy + dx * dx) * inv_h
        take = inside & (occ > 0.0)
        flat = (idx[..., 0] * shape[1] + idx[..., 1]) * shape[2] + idx[..., 2]
        np.maximum.at(flat_out, flat[take], np.minimum(occ[take], 1.0).astype(np.float32))
    return out


def draw_breast_vessels(rng: np.random.Generator, anatomy: Anatomy, b: Breast, n: int) -> list[Vessel]:
    """``n`` tortuous vessels (half with a branch) from the chest wall towards the nipple.

    Most enter laterally (lateral thoracic branches), the others medially
    (internal mammary perforators); each ends at 55-90 % of the breast depth
    inside the breast, radius tapering from 1.1-1.9 mm.
    """
    out: list[Vessel] = []
    lateral = float(np.sign(b.centre_x))
    for _ in range(n):
        side = lateral if rng.random() < 0.65 else -lateral  # lateral thoracic branches dominate
        x0 = b.centre_x + side * float(rng.uniform(0.35, 0.8)) * b.radius_x
        z0 = b.centre_z + float(rng.uniform(-0.5, 0.8)) * b.radius_z
        start = np.array([x0, float(anatomy.chest_wall_y(x0)) - 2.0, z0])
        v1 = float(rng.uniform(0.55, 0.9))
        spread = float(np.sqrt(1.0 - v1**b.roundness)) * (1.0 - b.taper * v1)
        x1 = float(b.axis_x(v1)) + float(rng.uniform(-0.6, 0.6)) * spread * b.radius_x
        z1 = b.centre_z + float(rng.uniform(-0.6, 0.6)) * spread * b.radius_z
        end = np.array([x1, float(anatomy.chest_wall_y(x1)) - v1 * b.depth, z1])
        path = tortuous_path(rng, start, end, (1.5, 5.0), (12.0, 30.0))
        r0 = float(rng.uniform(1.1, 1.9))
        out.append(tapered(path, r0, 0.55 * r0))
        if rng.random() < 0.5:  # one branch
            i = int(rng.integers(path.shape[0] // 4, path.shape[0] // 2 + 1))
            tip = end + rng.normal(0.0, 0.25 * b.radius_x, 3) * np.array([1.0, 0.3, 1.0])
            branch = tortuous_path(rng, path[i], tip, (1.0, 3.5), (10.0, 25.0))
            out.append(tapered(branch, 0.7 * r0, 0.4 * r0))
    return out


def draw_chest_vessels(rng: np.random.Generator, anatomy: Anatomy) -> list[Vessel]:
    """Internal mammary (beside the sternum, behind the costal cartilage) and lateral
    thoracic vessels (along the lateral chest wall), running superior-inferior."""
    out: list[Vessel] = []
    for side in (-1.0, 1.0):
        x_im = side * float(rng.uniform(24.0, 32.0))
        y_im = float(anatomy.chest_wall_y(x_im)) + anatomy.rib_mm * 0.6 + 2.0
        path = tortuous_path(rng, np.array([x_im, y_im, -140.0]), np.array([x_im, y_im, 140.0]), (0.5, 2.0),
                             (40.0, 90.0))
        out.append(tapered(path, float(rng.uniform(1.4, 2.0)), float(rng.uniform(1.2, 1.8))))
        b = anatomy.breasts[0 if side < 0 else 1]
        x_lt = b.centre_x + side * 0.9 * b.radius_x
        y_lt = float(anatomy.chest_wall_y(x_lt)) - 3.0
        path = tortuous_path(rng, np.array([x_lt, y_lt, -120.0]), np.array([x_lt - side * 12.0, y_lt, 140.0]),
                             (1.0, 4.0), (30.0, 70.0))
        out.append(tapered(path, float(rng.uniform(1.0, 1.5)), float(rng.uniform(1.3, 1.9))))
    return out
