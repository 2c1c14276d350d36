"""Siemens mosaic images: un-mosaicked into a volume with the right geometry, never stored as one 2D tile.

Siemens writes EPI series (diffusion, perfusion, fMRI) as *mosaics*: the ``n``
slices of one volume tiled row by row into one image of ``m x m`` tiles,
``m = ceil(sqrt(n))`` (ImageType value ``MOSAIC``; ``n`` in the private tag
(0019,100A) NumberOfImagesInMosaic of the ``SIEMENS MR HEADER`` block, or in
the CSA image header). Read as one slice it would store a picture of tiles in
the wrong place. As dcm2niix and nibabel do, each tile becomes a frame:

* tile size ``(Rows / m, Columns / m)``; tile ``i`` at tile row ``i // m``,
  tile column ``i % m``; tiles past ``n`` (blank) are dropped;
* the mosaic's ImagePositionPatient is that of the whole tiled image; the
  first slice's is ``IPP + row_cos * dx * (Columns - c) / 2 + col_cos * dy *
  (Rows - r) / 2`` (``(dy, dx)`` = PixelSpacing, ``(r, c)`` the tile size);
* slice ``i`` sits at ``first + i * step * normal``, ``normal`` the CSA
  SliceNormalVector (the direction of increasing slice index; the cross
  product of the orientation cosines when absent), ``step``
  SpacingBetweenSlices (else SliceThickness).

:func:`unmosaic_series` rewrites the headers of a mosaic series at planning
(re-reading its files' headers with pydicom: the probe keeps no private tags),
so grouping, classification and geometry see the real slices;
:func:`mosaic_tiles` cuts a decoded mosaic into those slices for
:func:`~breastflow.dicom.volume.read_volume`. A mosaic whose slice count or
geometry cannot be read stays as it is and is quarantined as
``mosaic-unsupported`` (:func:`mosaic_problem`), at planning and again by
``read_volume``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from breastflow.dicom.discover import open_binary
from breastflow.dicom.errors import MosaicUnsupported
from breastflow.dicom.header import InstanceHeader
from breastflow.dicom.series import SeriesGroup

#: The ImageType value Siemens writes on mosaic images.
MOSAIC_IMAGE_TYPE = "MOSAIC"
#: Private creator and element of NumberOfImagesInMosaic (0019,100A).
SIEMENS_MR_HEADER = "SIEMENS MR HEADER"
_N_MOSAIC_ELEMENT = 0x0A


def is_mosaic(header: InstanceHeader) -> bool:
    """Whether the object is a Siemens mosaic (ImageType contains MOSAIC)."""
    return MOSAIC_IMAGE_TYPE in header.image_type


def _csa_image_header(ds: Dataset) -> dict | None:
    try:
        with warnings.catch_warnings():  # nibabel warns that its DICOM readers are experimental
            warnings.simplefilter("ignore", UserWarning)
            from nibabel.nicom import csareader

        return csareader.get_csa_header(ds, "image")
    except Exception:  # noqa: BLE001 - a malformed CSA header only means we cannot use it
        return None


def mosaic_count_and_normal(ds: Dataset) -> tuple[int | None, tuple[float, float, float] | None]:
    """NumberOfImagesInMosaic and the CSA SliceNormalVector of a dataset (each ``None`` if absent)."""
    count = None
    try:
        count = int(ds.get_private_item(0x0019, _N_MOSAIC_ELEMENT, SIEMENS_MR_HEADER).value)
    except (KeyError, TypeError, ValueError):
        pass
    normal = None
    csa = _csa_image_header(ds)
    if csa is not None:
        from nibabel.nicom import csareader

        if count is None:
            try:
                count = int(csareader.get_n_mosaic(csa))
            except (KeyError, TypeError, ValueError, csareader.CSAReadError):
                count = None
        try:
            vector = csareader.get_slice_normal(csa)
            if vector is not None and len(vector) == 3:
                normal = tuple(float(v) for v in vector)
        except (KeyError, TypeError, ValueError, csareader.CSAReadError):
            normal = None
    return count, normal  # type: ignore[return-value]


def unmosaic_header(header: InstanceHeader, ds: Dataset) -> InstanceHeader:
    """The header of a mosaic object rewritten as ``n`` tile frames (see the module docstring).

    Args:
        header: the probed header (``rows``/``columns`` of the whole mosaic).
        ds: the same file's dataset, read with its private tags (pixels not needed).

    Raises:
        MosaicUnsupported: no slice count, a tile grid that does not divide the
            image, or missing geometry.
    """
    where = header.path
    count, csa_normal = mosaic_count_and_normal(ds)
    if not count or count < 1:
        raise MosaicUnsupported("ImageType says MOSAIC but neither (0019,100A) NumberOfImagesInMosaic nor the "
                                "CSA image header gives the number of slices", where)
    side = math.ceil(math.sqrt(count))
    if header.rows % side or header.columns % side:
        raise MosaicUnsupported(f"a {header.rows}x{header.columns} mosaic cannot hold {count} slices in "
                                f"{side}x{side} equal tiles", where)
    tile_rows, tile_cols = header.rows // side, header.columns // side
    (frame,) = header.frames if len(header.frames) == 1 else (None,)
    if frame is None or frame.position is None or frame.orientation is None or frame.pixel_spacing is None:
        raise MosaicUnsupported("a mosaic without ImagePositionPatient, ImageOrientationPatient and "
                                "PixelSpacing cannot be un-mosaicked", where)
    row, col = np.asarray(frame.orientation[:3]), np.asarray(frame.orientation[3:])
    dy, dx = frame.pixel_spacing
    first = (np.asarray(frame.position) + row * dx * (header.columns - tile_cols) / 2
             + col * dy * (header.rows - tile_rows) / 2)
    normal = np.asarray(csa_normal) if csa_normal is not None else np.cross(row, col)
    step = header.spacing_between_slices_mm or header.slice_thickness_mm
    if not step:
        raise MosaicUnsupported("a mosaic without SpacingBetweenSlices or SliceThickness: the slice "
                                "positions are unknown", where)
    frames = tuple(replace(frame, frame_index=i, position=tuple(float(v) for v in first + i * step * normal))
                   for i in range(count))
    return replace(header, rows=tile_rows, columns=tile_cols, n_frames=count, frames=frames,
                   mosaic_images=count)


def mosaic_tiles(pixels: np.ndarray, header: InstanceHeader) -> np.ndarray:
    """Cut a decoded mosaic ``(Rows, Columns)`` into its slices ``(n, r, c)`` (a view, tile order).

    Args:
        pixels: the decoded mosaic image.
        header: the un-mosaicked header (tile ``rows``/``columns``, ``mosaic_images``).

    Raises:
        MosaicUnsupported: the image is not ``m`` tiles by ``m`` tiles of the header's size.
    """
    count = header.mosaic_images or 0
    side = math.ceil(math.sqrt(count)) if count else 0
    if not count or pixels.shape != (side * header.rows, side * header.columns):
        raise MosaicUnsupported(f"decoded image {pixels.shape} is not {side}x{side} tiles of "
                                f"{header.rows}x{header.columns}", header.path)
    blocks = pixels.reshape(side, header.rows, side, header.columns).transpose(0, 2, 1, 3)
    return blocks.reshape(side * side, header.rows, header.columns)[:count]


def unmosaic_series(groups: Iterable[SeriesGroup], storage_options: dict | None = None) -> list[SeriesGroup]:
    """Every series of ``groups``, mosaic ones with un-mosaicked headers (order kept).

    A mosaic series whose headers cannot be un-mosaicked is left as it is;
    :func:`mosaic_problem` then names it. Reads the header of each mosaic
    file once more (rare files; nothing else is read).
    """
    out = []
    for group in groups:
        pending = [is_mosaic(h) and h.mosaic_images is None for h in group.headers]
        if not all(pending):  # no mosaic, or mosaics mixed with other files (left to mosaic_problem)
            out.append(group)
            continue
        try:
            headers = []
            for header in group.headers:
                with open_binary(header.path, storage_options) as handle:
                    ds = pydicom.dcmread(handle, stop_before_pixels=True)
                headers.append(unmosaic_header(header, ds))
            out.append(replace(group, headers=tuple(headers)))
        except Exception:  # noqa: BLE001 - left as it is; mosaic_problem quarantines this series alone
            out.append(group)
    return out


def mosaic_problem(series: SeriesGroup) -> MosaicUnsupported | None:
    """The error to report for a mosaic series that was not un-mosaicked, or ``None``."""
    pending = [h for h in series.headers if is_mosaic(h) and h.mosaic_images is None]
    if not pending:
        return None
    mixed = len(pending) < len(series.headers)
    header = pending[0]
    return MosaicUnsupported(
        f"Siemens mosaic: {len(pending)} of {len(series.headers)} files are a {header.rows}x{header.columns} "
        "tiled image (ImageType MOSAIC) that could not be un-mosaicked "
        f"({'mixed with non-mosaic files' if mixed else 'slice count, tile grid or geometry missing'}); "
        "storing the tiled image as one slice would put wrong voxels in the store, so the series is not "
        "ingested", series.locator)
