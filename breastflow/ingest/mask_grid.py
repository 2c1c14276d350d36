"""Put a NIfTI label mask onto a stored series' voxel grid, exactly, or say why it does not fit.

Conventions:

* A stored series is ``array[z, y, x]`` (see :mod:`breastflow.dicom.volume`):
  the LPS position (mm) of voxel ``(z, y, x)`` is
  ``origin + x*dx*row + y*dy*col + z*dz*normal`` with ``direction`` rows
  ``(row, col, normal)`` and ``spacing_mm = (dz, dy, dx)``.
* A NIfTI image is ``data[i, j, k]`` with an affine to **RAS** mm
  (``RAS = A @ [i, j, k, 1]``); DICOM is **LPS**, so ``A_lps = diag(-1, -1, 1, 1) @ A``.

The index map from NIfTI ``(i, j, k)`` to our ``(x, y, z)`` is
``T = E^-1 @ A_lps`` with ``E`` the stored grid's index-to-LPS affine. The mask
is accepted only when ``T`` is a signed axis permutation whose translation
maps the mask's extent exactly onto the grid (corners within
:data:`VOXEL_TOLERANCE` voxels): then transposes and flips reproduce the mask
on the grid with no interpolation. That covers dcm2niix/nibabel RAS masks,
LPS-written masks, other axis orders and reversed slice order. Anything else
(other voxel size, shifted or cropped field of view, oblique axes, other
shape) raises :class:`MaskGridMismatch` with the measured difference.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

#: Largest accepted distance (in voxels) between where a mask corner lands and a grid corner.
VOXEL_TOLERANCE = 0.1
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # its own inverse


class MaskGridMismatch(ValueError):
    """A mask is not on the stored series' voxel grid (message says how it differs)."""


@dataclass(frozen=True)
class StoredGrid:
    """The voxel grid of a stored series (from its ``breastflow`` attributes).

    Attributes:
        shape: ``(Z, Y, X)``.
        spacing_mm: ``(dz, dy, dx)``.
        origin_mm: LPS position of voxel ``(0, 0, 0)``.
        direction: 3x3 rows = row cosine (X axis), column cosine (Y), slice normal (Z).
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def from_attrs(cls, attrs: dict) -> StoredGrid:
        """Build from a series' ``attrs["breastflow"]`` (shape, spacing_mm, origin_mm, direction)."""
        return cls(shape=tuple(int(v) for v in attrs["shape"]),  # type: ignore[arg-type]
                   spacing_mm=tuple(float(v) for v in attrs["spacing_mm"]),  # type: ignore[arg-type]
                   origin_mm=tuple(float(v) for v in attrs["origin_mm"]),  # type: ignore[arg-type]
                   direction=tuple(float(v) for v in attrs["direction"]))

    def affine_lps(self) -> np.ndarray:
        """4x4 affine from ``(x, y, z, 1)`` indices to LPS mm."""
        d = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        dz, dy, dx = self.spacing_mm
        affine = np.eye(4)
        affine[:3, 0], affine[:3, 1], affine[:3, 2] = d[0] * dx, d[1] * dy, d[2] * dz
        affine[:3, 3] = self.origin_mm
        return affine

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        return (self.shape[2], self.shape[1], self.shape[0])


def _describe_mismatch(a_lps: np.ndarray, grid: StoredGrid, shape_ijk: tuple[int, ...]) -> str:
    mask_sizes = np.linalg.norm(a_lps[:3, :3], axis=0)
    grid_sizes = np.asarray(grid.spacing_mm[::-1])
    return (f"mask voxel size (i, j, k) {np.round(mask_sizes, 4).tolist()} mm, shape {list(shape_ijk)}, "
            f"origin (LPS) {np.round(a_lps[:3, 3], 3).tolist()} mm; pre-contrast grid voxel size (x, y, z) "
            f"{np.round(grid_sizes, 4).tolist()} mm, shape (x, y, z) {list(grid.shape_xyz)}, origin (LPS) "
            f"{np.round(grid.origin_mm, 3).tolist()} mm")


def index_map(affine_ras: np.ndarray, grid: StoredGrid, shape_ijk: tuple[int, int, int]
              ) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """How NIfTI axes map onto the grid's ``(x, y, z)``: source axis and flip per grid axis.

    Args:
        affine_ras: the mask's 4x4 NIfTI affine (to RAS).
        grid: the stored series' grid.
        shape_ijk: the mask's data shape ``(I, J, K)``.

    Returns:
        ``(axes, flips)``: grid axis ``a`` takes NIfTI axis ``axes[a]``, reversed if ``flips[a]``.

    Raises:
        MaskGridMismatch: not an exact signed permutation onto the grid.
    """
    a_lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)
    t = np.linalg.solve(grid.affine_lps(), a_lps)
    m = t[:3, :3]
    axes = tuple(int(np.argmax(np.abs(m[a]))) for a in range(3))
    if sorted(axes) != [0, 1, 2]:
        raise MaskGridMismatch("mask axes are oblique to the pre-contrast grid; "
                               + _describe_mismatch(a_lps, grid, shape_ijk))
    flips = tuple(bool(m[a, axes[a]] < 0) for a in range(3))
    sizes = grid.shape_xyz
    if tuple(shape_ijk[axes[a]] for a in range(3)) != sizes:
        raise MaskGridMismatch("mask shape differs from the pre-contrast grid; "
                               + _describe_mismatch(a_lps, grid, shape_ijk))
    perm = np.zeros((3, 3))
    offset = np.zeros(3)
    for a in range(3):
        perm[a, axes[a]] = -1.0 if flips[a] else 1.0
        offset[a] = sizes[a] - 1 if flips[a] else 0.0
    worst = 0.0
    for corner in itertools.product(*[(0, n - 1) for n in shape_ijk]):
        c = np.asarray(corner, dtype=np.float64)
        worst = max(worst, float(np.abs(m @ c + t[:3, 3] - (perm @ c + offset)).max()))
    if worst > VOXEL_TOLERANCE:
        raise MaskGridMismatch(f"mask is off the pre-contrast grid by up to {worst:.2f} voxels "
                               f"(tolerance {VOXEL_TOLERANCE}); " + _describe_mismatch(a_lps, grid, shape_ijk))
    return axes, flips  # type: ignore[return-value]


def mask_to_grid(data_ijk: np.ndarray, affine_ras: np.ndarray, grid: StoredGrid) -> np.ndarray:
    """Reorder a NIfTI label array onto the stored grid: returns ``(Z, Y, X)`` uint8 labels.

    Args:
        data_ijk: NIfTI data ``(I, J, K)`` (a trailing singleton 4th axis is allowed);
            integer labels 0..255 (float data must hold whole numbers).
        affine_ras: the NIfTI affine (sform, else qform) to RAS mm.
        grid: the stored series' grid.

    Raises:
        MaskGridMismatch: see :func:`index_map`.
        ValueError: not 3-D, or labels that are not whole numbers in 0..255.
    """
    data = np.asarray(data_ijk)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"mask must be a 3-D label volume, got shape {data.shape}")
    if data.size and not np.issubdtype(data.dtype, np.integer) and (
            not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data))):
        raise ValueError(f"mask holds non-integer values (dtype {data.dtype}); expected labels")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"mask labels must lie in 0..255, found {data.min()}..{data.max()}")
    axes, flips = index_map(affine_ras, grid, data.shape)  # type: ignore[arg-type]
    xyz = np.transpose(data, axes)
    for a, flip in enumerate(flips):
        if flip:
            xyz = np.flip(xyz, axis=a)
    return np.ascontiguousarray(xyz.transpose(2, 1, 0)).astype(np.uint8)
