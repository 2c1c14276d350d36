"""Voxel grids of an axial phantom series and their DICOM / NIfTI geometry.

Conventions (DICOM patient coordinates, LPS: +x = patient left, +y = posterior,
+z = superior; millimetres):

* Every phantom MR series is axial, ``ImageOrientationPatient = [1,0,0, 0,1,0]``:
  the column index ``c`` runs along +x, the row index ``r`` along +y (row 0 is
  the most anterior row, so the prone breasts hang towards the top of the
  image), and the slice normal is ``row x col = +z``.
* Volumes are held as arrays ``(n_slices, rows, cols)`` indexed ``[k, r, c]``
  with ``k = 0`` the most inferior slice, i.e. sorted by ImagePositionPatient
  projected on the slice normal. This is the slice index used by ``lesions.csv``.
* The patient coordinates of voxel ``[k, r, c]`` are
  ``origin + c * dx * (1,0,0) + r * dy * (0,1,0) + k * dz * (0,0,1)``.
* NIfTI masks are stored ``(cols, rows, slices)`` (i, j, k) with a RAS affine
  ``diag(-1, -1, 1, 1) @ A_lps`` (the convention of dcm2niix and nibabel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    """An axial voxel grid centred (in-plane) on the patient's L-R midline.

    Attributes:
        rows: image rows (A -> P).
        cols: image columns (R -> L).
        n_slices: number of slices (I -> S).
        pixel_spacing: ``(row spacing dy, column spacing dx)`` in mm, DICOM order.
        slice_spacing: centre-to-centre distance between slices in mm.
        slice_thickness: nominal slice thickness in mm (may exceed the spacing).
        origin: LPS position of voxel ``[0, 0, 0]``'s centre in mm.
    """

    rows: int
    cols: int
    n_slices: int
    pixel_spacing: tuple[float, float]
    slice_spacing: float
    slice_thickness: float
    origin: tuple[float, float, float]

    def __post_init__(self) -> None:
        if min(self.rows, self.cols, self.n_slices) < 1:
            raise ValueError(f"grid sizes must be >= 1, got {self.shape}")
        if min(*self.pixel_spacing, self.slice_spacing, self.slice_thickness) <= 0:
            raise ValueError("grid spacings must be > 0")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(n_slices, rows, cols)``."""
        return (self.n_slices, self.rows, self.cols)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Voxel spacing ``(dz, dy, dx)`` in mm, matching the array axes."""
        return (self.slice_spacing, self.pixel_spacing[0], self.pixel_spacing[1])

    def axis_mm(self, axis: int) -> np.ndarray:
        """LPS coordinate (mm) of voxel centres along array ``axis`` (0=z, 1=y, 2=x)."""
        n = self.shape[axis]
        start = self.origin[2 - axis]
        return (start + np.arange(n) * self.spacing_zyx[axis]).astype(np.float64)

    def position(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient (LPS mm) of slice ``k`` (its first voxel's centre)."""
        x0, y0, z0 = self.origin
        return (x0, y0, z0 + k * self.slice_spacing)

    def affine_lps(self) -> np.ndarray:
        """4x4 affine mapping NIfTI-ordered indices ``(c, r, k, 1)`` to LPS mm."""
        dy, dx = self.pixel_spacing
        affine = np.diag([dx, dy, self.slice_spacing, 1.0])
        affine[:3, 3] = self.origin
        return affine

    def affine_ras(self) -> np.ndarray:
        """4x4 NIfTI affine mapping ``(c, r, k, 1)`` to RAS mm."""
        return LPS_TO_RAS @ self.affine_lps()


def make_grid(
    rows: int,
    cols: int,
    n_slices: int,
    fov_mm: tuple[float, float],
    slice_spacing: float,
    slice_thickness: float,
    centre_z: float = 0.0,
    centre_y: float = 0.0,
) -> Grid:
    """Build an axial grid whose in-plane FOV is centred at ``(0, centre_y)``.

    Args:
        rows, cols: matrix.
        n_slices: number of slices.
        fov_mm: ``(fov_y, fov_x)`` field of view in mm.
        slice_spacing, slice_thickness: in mm.
        centre_z: LPS z of the slab centre.
        centre_y: LPS y of the in-plane FOV centre.
    """
    dy, dx = fov_mm[0] / rows, fov_mm[1] / cols
    origin = (
        -0.5 * (cols - 1) * dx,
        centre_y - 0.5 * (rows - 1) * dy,
        centre_z - 0.5 * (n_slices - 1) * slice_spacing,
    )
    return Grid(
        rows=rows,
        cols=cols,
        n_slices=n_slices,
        pixel_spacing=(float(dy), float(dx)),
        slice_spacing=float(slice_spacing),
        slice_thickness=float(slice_thickness),
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
    )


def slab(grid: Grid, k0: int, k1: int) -> Grid:
    """The sub-grid of slices ``k0 <= k < k1`` of ``grid``.

    Raises:
        ValueError: on an empty or out-of-range slice interval.
    """
    if not 0 <= k0 < k1 <= grid.n_slices:
        raise ValueError(f"slab [{k0}, {k1}) outside 0..{grid.n_slices}")
    x0, y0, z0 = grid.origin
    return Grid(rows=grid.rows, cols=grid.cols, n_slices=k1 - k0, pixel_spacing=grid.pixel_spacing,
                slice_spacing=grid.slice_spacing, slice_thickness=grid.slice_thickness,
                origin=(x0, y0, z0 + k0 * grid.slice_spacing))


def sub_grid(grid: Grid, lo: tuple[int, int, int] | list[int], hi: tuple[int, int, int] | list[int]) -> Grid:
    """The sub-grid of ``grid`` covering index ranges ``[lo, hi)`` per array axis (z, y, x).

    Raises:
        ValueError: on an empty or out-of-range interval.
    """
    for axis in range(3):
        if not 0 <= lo[axis] < hi[axis] <= grid.shape[axis]:
            raise ValueError(f"sub-grid [{lo[axis]}, {hi[axis]}) outside 0..{grid.shape[axis]} on axis {axis}")
    x0, y0, z0 = grid.origin
    dz, dy, dx = grid.spacing_zyx
    return Grid(rows=hi[1] - lo[1], cols=hi[2] - lo[2], n_slices=hi[0] - lo[0], pixel_spacing=grid.pixel_spacing,
                slice_spacing=grid.slice_spacing, slice_thickness=grid.slice_thickness,
                origin=(x0 + lo[2] * dx, y0 + lo[1] * dy, z0 + lo[0] * dz))
