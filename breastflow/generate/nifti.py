"""NIfTI export of a stored (real or synthetic) series with its real affine.

The stored array is ``(Z, Y, X)``; NIfTI indices are ``(i, j, k) = (x, y, z)``, so
the data is transposed to ``(X, Y, Z)`` and the affine is the stored grid's
index-to-LPS affine ``E`` (:class:`breastflow.ingest.mask_grid.StoredGrid`)
converted to RAS: ``A = diag(-1, -1, 1, 1) @ E`` - the same convention the
phantom's truth masks use (:func:`breastflow.phantom.truth.write_label_mask`),
so a synthetic volume overlays its real pre-contrast series and the lesion
masks in any NIfTI viewer. Raw stored values are written in the stored dtype
with the remaining rescale as ``scl_slope``/``scl_inter``.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from breastflow.ingest.mask_grid import LPS_TO_RAS, StoredGrid
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs


def series_affine_ras(attrs: dict) -> np.ndarray:
    """4x4 NIfTI affine (``(i, j, k) = (x, y, z)`` indices -> RAS mm) of a series' ``attrs["breastflow"]``."""
    return LPS_TO_RAS @ StoredGrid.from_attrs(attrs).affine_lps()


def export_nifti(loc: StoreLocation, study: str, series: str, path: Path) -> Path:
    """Write one stored series (of ``loc``, e.g. a synthetic set's nested store) as ``.nii.gz``.

    Args:
        loc: the store holding the series; study, series: which one.
        path: output file (parents created).

    Returns:
        ``path``.

    Raises:
        FileNotFoundError: no such series.
    """
    attrs = series_attrs(loc, study, series).get("breastflow", {})
    volume = np.asarray(open_series_array(loc, study, series)[:])
    affine = series_affine_ras(attrs)
    image = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)  # scanner anatomical
    image.set_sform(affine, code=1)
    slope, intercept = attrs.get("rescale_slope"), attrs.get("rescale_intercept")
    image.header.set_slope_inter(1.0 if slope is None else float(slope), 0.0 if intercept is None else float(intercept))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path
