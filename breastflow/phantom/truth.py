"""Ground truth written beside the DICOM: lesion label masks (NIfTI) and lesion rows.

Masks are NIfTI-1 (``.nii.gz``) rather than DICOM SEG because that is what
segmentation tooling (MONAI, nnU-Net, nibabel) loads directly; the affine is
built from the pre-contrast series' DICOM geometry (LPS) and converted to RAS,
so ``nibabel.load(mask).affine @ [c, r, k, 1]`` gives the RAS position of the
voxel at row ``r``, column ``c`` of pre-contrast slice ``k`` (slices sorted by
ImagePositionPatient along the slice normal, see :mod:`geometry`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from breastflow.phantom.geometry import Grid
from breastflow.phantom.lesions import Lesion

LESION_COLUMNS = (
    "study_id", "lesion_id", "class", "curve_type", "necrotic_core", "side",
    "start_row", "end_row", "start_column", "end_column", "start_slice", "end_slice",
    "centre_mm", "volume_ml", "n_voxels", "peak_enhancement", "wash_in_per_min", "wash_out_per_min",
)


def write_label_mask(path: Path, labels: np.ndarray, grid: Grid) -> None:
    """Save a ``(n_slices, rows, cols)`` uint8 label volume as NIfTI with a RAS affine.

    The array is stored as ``(cols, rows, slices)`` so NIfTI ``(i, j, k)`` =
    DICOM ``(column, row, slice)``; written with nibabel's deterministic gzip
    (no timestamp in the header), so identical masks give identical bytes.

    Raises:
        ValueError: if ``labels`` does not match the grid or is not uint8.
    """
    if labels.shape != grid.shape or labels.dtype != np.uint8:
        raise ValueError(f"labels must be uint8 {grid.shape}, got {labels.dtype} {labels.shape}")
    data = np.ascontiguousarray(labels.transpose(2, 1, 0))
    img = nib.Nifti1Image(data, grid.affine_ras())
    img.header.set_xyzt_units("mm")
    img.set_qform(grid.affine_ras(), code=1)  # scanner anatomical
    img.set_sform(grid.affine_ras(), code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def lesion_row(study_id: str, lesion_id: int, lesion: Lesion, mask: np.ndarray, grid: Grid) -> dict[str, object]:
    """One ``lesions.csv`` row (Duke annotation-table style; bounds inclusive, 0-based).

    Args:
        study_id: phantom study id.
        lesion_id: label value of the lesion in the mask (1-based).
        lesion: the lesion model.
        mask: boolean ``(n_slices, rows, cols)`` voxels of this lesion.
        grid: pre-contrast grid.

    Raises:
        ValueError: if the lesion has no voxel on the grid.
    """
    k, r, c = np.nonzero(mask)
    if k.size == 0:
        raise ValueError(f"{study_id}: lesion {lesion_id} has no voxel on the pre-contrast grid")
    voxel_ml = grid.pixel_spacing[0] * grid.pixel_spacing[1] * grid.slice_spacing / 1000.0
    x, y, z = lesion.centre
    return {
        "study_id": study_id,
        "lesion_id": lesion_id,
        "class": lesion.lesion_class.value,
        "curve_type": lesion.curve_type.value,
        "necrotic_core": lesion.necrotic,
        "side": "L" if x > 0 else "R",
        "start_row": int(r.min()), "end_row": int(r.max()),
        "start_column": int(c.min()), "end_column": int(c.max()),
        "start_slice": int(k.min()), "end_slice": int(k.max()),
        "centre_mm": f"{x:.2f};{y:.2f};{z:.2f}",
        "volume_ml": round(float(k.size * voxel_ml), 4),
        "n_voxels": int(k.size),
        "peak_enhancement": round(lesion.kinetics.amplitude, 4),
        "wash_in_per_min": round(lesion.kinetics.wash_in, 4),
        "wash_out_per_min": round(lesion.kinetics.wash_out, 4),
    }
