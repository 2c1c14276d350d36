"""Smooth random fields defined in patient millimetres, sampled on any axial grid.

A :class:`SmoothField` is white noise on a coarse lattice (fixed in patient
space), Gaussian-smoothed and normalised to zero mean / unit variance, then
linearly interpolated to the voxel centres of whatever :class:`Grid` asks for.
Because the lattice lives in millimetres, the same field sampled on the
pre-contrast grid and on a T2 grid of another matrix gives the same anatomy,
and the cost of sampling is a few gathers per output voxel (separable linear
interpolation, no 3D convolution at full resolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from breastflow.phantom.geometry import Grid

# Extent of patient space covered by every field (LPS mm, per axis z, y, x).
EXTENT_MM = ((-130.0, 130.0), (-220.0, 260.0), (-220.0, 220.0))


@dataclass(frozen=True)
class SmoothField:
    """A unit-variance smooth random field on a coarse mm lattice.

    Attributes:
        values: coarse lattice values, shape ``(nz, ny, nx)``, float32.
        start: LPS mm of lattice point ``[0, 0, 0]`` as ``(z, y, x)``.
        step: lattice step in mm as ``(z, y, x)``.
    """

    values: np.ndarray
    start: tuple[float, float, float]
    step: tuple[float, float, float]

    def sample(self, grid: Grid, box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """Interpolate the field on ``grid`` (or on its voxels ``grid[box]``).

        Returns:
            float32 ``(n_slices, rows, cols)``, or the shape of ``box``.
        """
        box = box or (slice(None),) * 3
        idx = [self._index(grid.axis_mm(axis)[box[axis]], axis) for axis in range(3)]
        shape = tuple(len(i) for i in idx)
        lo = [int(np.floor(i.min())) for i in idx]
        out = self._crop(lo, [int(np.floor(i.max())) + 2 for i in idx])
        # axes in order of growth (output / cropped lattice length), so intermediates
        # stay small: each pass is two gathers and one fused multiply-add.
        order = sorted(range(3), key=lambda a: shape[a] / self.values.shape[a])
        for axis in order:
            out = _interp_axis(out, axis, idx[axis], lo[axis])
        return np.ascontiguousarray(out, dtype=np.float32)

    def sample_converging(self, grid: Grid, apex_xyz: tuple[float, float, float], length_mm: float,
                          min_fraction: float = 0.12) -> np.ndarray:
        """Sample the field warped so that its A-P streaks converge on ``apex_xyz``.

        The voxel at ``(x, y, z)`` reads the field at ``(x', y, z')`` with
        ``x' = ax + (x - ax) g(y)``, ``z' = az + (z - az) g(y)`` and
        ``g(y) = length_mm / max(y - ay, min_fraction * length_mm)``: lines of
        constant ``(x', z')`` are rays through the apex, so a field that is long
        along y becomes duct-like strands running towards the nipple. Cost is
        eight gathers per output voxel (direct trilinear interpolation: the warp
        spreads a few output rows over the whole lattice, so a separable pass
        would interpolate far more lattice rows than there are output voxels).

        Args:
            grid: where to sample.
            apex_xyz: LPS ``(x, y, z)`` mm of the convergence point (nipple).
            length_mm: distance (mm, > 0) from the apex at which the warp is the identity.
            min_fraction: the warp is frozen closer than this fraction of ``length_mm``.

        Returns:
            float32 ``(n_slices, rows, cols)``.

        Raises:
            ValueError: if ``length_mm`` is not positive.
        """
        if length_mm <= 0:
            raise ValueError(f"length_mm must be > 0, got {length_mm}")
        ax, ay, az = apex_xyz
        y = grid.axis_mm(1)
        g = length_mm / np.maximum(y - ay, min_fraction * length_mm)  # (rows,)
        z_idx = self._index(az + (grid.axis_mm(0)[:, None] - az) * g[None, :], 0)  # (slices, rows)
        y_idx = self._index(y, 1)  # (rows,)
        x_idx = self._index(ax + (grid.axis_mm(2)[None, :] - ax) * g[:, None], 2)  # (rows, cols)
        return _trilinear(self.values, z_idx[:, :, None], y_idx[None, :, None], x_idx[None, :, :])

    def _crop(self, lo: list[int], hi: list[int]) -> np.ndarray:
        """Lattice block ``[lo, hi)`` per axis (clamped to the lattice)."""
        return self.values[tuple(slice(a, min(b, n)) for a, b, n in zip(lo, hi, self.values.shape))]

    def _index(self, mm: np.ndarray, axis: int) -> np.ndarray:
        idx = (mm - self.start[axis]) / self.step[axis]
        return np.clip(idx, 0.0, self.values.shape[axis] - 1.000001)


def _interp_axis(arr: np.ndarray, axis: int, idx: np.ndarray, offset: int = 0) -> np.ndarray:
    """Linear interpolation along ``axis`` at lattice indices ``idx`` of a block starting at ``offset``."""
    i0 = np.floor(idx).astype(np.intp)
    frac = (idx - i0).astype(np.float32)
    i0 -= offset
    lo = np.take(arr, i0, axis=axis)
    hi = np.take(arr, i0 + 1, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = -1
    frac = frac.reshape(shape)
    lo += (hi - lo) * frac
    return lo


def _trilinear(values: np.ndarray, z_idx: np.ndarray, y_idx: np.ndarray, x_idx: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of ``values`` at fractional indices broadcasting to the output shape.

    Indices must lie in ``[0, n - 1)`` per axis (see ``SmoothField._index``). Returns float32.
    """
    _, ny, nx = values.shape
    flat = values.reshape(-1)
    i0 = [np.floor(i).astype(np.intp) for i in (z_idx, y_idx, x_idx)]
    fz, fy, fx = ((i - j).astype(np.float32) for i, j in zip((z_idx, y_idx, x_idx), i0))
    base = (i0[0] * (ny * nx) + i0[1] * nx) + i0[2]

    def along_x(b: np.ndarray) -> np.ndarray:
        lo = flat.take(b)
        hi = flat.take(b + 1)
        hi -= lo
        hi *= fx
        lo += hi
        return lo

    def lerp(lo: np.ndarray, hi: np.ndarray, frac: np.ndarray) -> np.ndarray:
        hi -= lo
        hi *= frac
        lo += hi
        return lo

    front = lerp(along_x(base), along_x(base + nx), fy)
    back = lerp(along_x(base + ny * nx), along_x(base + (ny * nx + nx)), fy)
    return lerp(front, back, fz)


def draw_field(
    rng: np.random.Generator,
    corr_mm: tuple[float, float, float],
    extent_mm: tuple[tuple[float, float], ...] = EXTENT_MM,
) -> SmoothField:
    """Draw a smooth field with correlation lengths ``corr_mm`` = ``(z, y, x)`` in mm.

    The lattice step is half the correlation length along each axis and the
    white noise is smoothed with a Gaussian of sigma 1 lattice step, so the
    field's features are about ``corr_mm`` wide. Anisotropic correlation gives
    streaky textures (e.g. long along A-P for duct-like glandular tissue).

    Args:
        rng: generator, consumed deterministically.
        corr_mm: correlation lengths along z, y, x (mm, > 0).
        extent_mm: ``((z0, z1), (y0, y1), (x0, x1))`` patient region covered;
            outside it the field is clamped to its border values.

    Raises:
        ValueError: if a correlation length is not positive.
    """
    if min(corr_mm) <= 0:
        raise ValueError(f"correlation lengths must be > 0, got {corr_mm}")
    step = tuple(float(c) / 2.0 for c in corr_mm)
    shape = tuple(int(np.ceil((hi - lo) / s)) + 1 for (lo, hi), s in zip(extent_mm, step))
    noise = rng.standard_normal(shape, dtype=np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=1.0, mode="wrap")
    smooth -= smooth.mean()
    smooth /= smooth.std() + 1e-12
    start = tuple(float(lo) for lo, _ in extent_mm)
    return SmoothField(values=smooth.astype(np.float32), start=start, step=step)  # type: ignore[arg-type]
