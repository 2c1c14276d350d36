"""Siemens mosaic images: recognised and refused, never stored as one 2D tile.

Siemens writes EPI series (diffusion, perfusion, fMRI) as *mosaics*: the
slices of one volume tiled into a single large image (ImageType value
``MOSAIC``; the slice count in NumberOfImagesInMosaic of the CSA image header
or the private tag (0019,100A)). Its ImagePositionPatient is that of the whole
tiled image, not of a slice, so reading it as one slice stores a picture of
tiles in the wrong place. breastflow does not un-mosaic (the tile size, the
corrected slice positions and the slice order need the CSA header, as
dcm2niix does); such a series is quarantined as ``mosaic-unsupported`` at
planning and refused again by :func:`~breastflow.dicom.volume.read_volume`.
"""

from __future__ import annotations

from breastflow.dicom.errors import MosaicUnsupported
from breastflow.dicom.series import SeriesGroup

#: The ImageType value Siemens writes on mosaic images.
MOSAIC_IMAGE_TYPE = "MOSAIC"


def is_mosaic(series: SeriesGroup) -> bool:
    """Whether any object of the series is a Siemens mosaic (ImageType contains MOSAIC)."""
    return any(MOSAIC_IMAGE_TYPE in h.image_type for h in series.headers)


def mosaic_problem(series: SeriesGroup) -> MosaicUnsupported | None:
    """The error to report for a mosaic series, or ``None`` when it is not one."""
    if not is_mosaic(series):
        return None
    count = sum(MOSAIC_IMAGE_TYPE in h.image_type for h in series.headers)
    header = next(h for h in series.headers if MOSAIC_IMAGE_TYPE in h.image_type)
    return MosaicUnsupported(
        f"Siemens mosaic: {count} of {len(series.headers)} files have ImageType MOSAIC ({header.rows}x"
        f"{header.columns} tiled image, several slices per file). Un-mosaicking is not supported, and storing "
        "the tiled image as one slice would put wrong voxels in the store, so the series is not ingested; "
        "convert it first (e.g. dcm2niix) or export the series without mosaic", series.locator)
