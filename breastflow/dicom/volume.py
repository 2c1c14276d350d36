"""Read one series into a validated 3D array: sort, check geometry, decode, rescale.

Array layout: ``array[z, y, x]`` where ``x`` runs along the row direction
cosine (ImageOrientationPatient[:3], DICOM columns), ``y`` along the column
direction cosine (IOP[3:], DICOM rows) and ``z`` along the slice normal
``n = row x col``, slices sorted by their position ``p . n`` ascending. The
patient-space (LPS, mm) position of voxel ``(z, y, x)`` is
``origin + x*dx*row + y*dy*col + z*dz*n`` with ``(dz, dy, dx) = spacing_mm``.

Rescale policy (never a silent float):

* identity slope/intercept: stored values, native dtype (e.g. ``uint16``);
* one integer slope and integer intercept for all frames (e.g. CT ``-1024``):
  applied exactly, into the smallest integer dtype that holds every value the
  BitsStored range can produce (CT 12 bit, -1024 -> ``int16``);
* one non-integer slope/intercept for all frames (e.g. Philips MR): stored
  values kept in the native dtype, ``rescale_slope``/``rescale_intercept`` say
  how to get physical values (``physical = array * slope + intercept``);
* per-frame values that differ: applied if all are integers, otherwise
  :class:`~breastflow.dicom.errors.InconsistentRescale`.

Memory: the output is preallocated once and filled frame by frame (each
multi-frame file is decoded one frame at a time), so a series is never held
twice.

Speed: uncompressed little-endian pixel data (the common scanner export) is
read straight from the file into its slot of the output (``readinto``, no
second header parse, no intermediate array) when the Pixel Data element is
the file's last element and has exactly the length the header implies; its
unused high bits are then cleared (or sign-extended) exactly as pydicom's
native decoder does. Anything else (compressed, big-endian, deflated, odd
layouts, trailing elements) goes through pydicom's pixel pipeline, after
:func:`~breastflow.dicom.encapsulated.check_encapsulated` has checked every
compressed frame complete (pydicom's frame iterator decodes a cut JPEG
Lossless / JPEG-LS frame into wrong values without an error).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np
from pydicom import uid
from pydicom.pixels import iter_pixels

from breastflow.dicom.discover import check_pixel_element, open_binary
from breastflow.dicom.encapsulated import check_encapsulated, is_encapsulated, pixel_data_offset
from breastflow.dicom.errors import (
    DuplicateSlice,
    InconsistentGeometry,
    InconsistentRescale,
    IngestError,
    MissingSlice,
    Truncated,
    UndecodableTransferSyntax,
    UnsupportedImage,
)
from breastflow.dicom.header import FrameInfo, InstanceHeader
from breastflow.dicom.mosaic import mosaic_problem, mosaic_tiles
from breastflow.dicom.series import SeriesGroup

#: Relative tolerance on slice-step uniformity (1 % of the median step).
SPACING_TOLERANCE = 0.01
#: Absolute tolerance (mm) for comparing orientations, spacings and in-plane offsets.
GEOMETRY_ATOL = 1e-3
_INT_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64)
#: Transfer syntaxes whose pixel data is read directly (native, little-endian).
_DIRECT_SYNTAXES = frozenset({uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian})
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little-endian


class Geometry(str, Enum):
    """Whether the array is a patient-space volume or a 2D projection image."""

    VOLUME = "volume"
    PROJECTION = "projection"


@dataclass
class SeriesVolume:
    """A decoded, validated series.

    Attributes:
        series: the source :class:`SeriesGroup` (carries raw UIDs/IDs: PHI, memory only).
        array: ``(Z, Y, X)`` integer array (never float), see the module docstring.
        spacing_mm: ``(dz, dy, dx)``; ``dz`` is the measured slice step (for one
            slice or a projection: SpacingBetweenSlices, SliceThickness or 1.0).
        origin_mm: LPS position of voxel ``(0, 0, 0)`` (projections: zeros).
        direction: ``(3, 3)`` rows = row cosine, column cosine, slice normal.
        geometry: volume or projection.
        rescale_slope, rescale_intercept: what is left to apply to ``array`` to
            get modality values (1/0 when already applied or identity).
        rescale_applied: whether a non-identity integer rescale was applied.
        stored_rescale: the DICOM (slope, intercept) when uniform, else ``None``.
        transfer_syntaxes: the source transfer syntax UIDs (sorted, distinct).
        n_frames: number of 2D frames read (== ``array.shape[0]``).
        photometric: MONOCHROME1 or MONOCHROME2.
        bits_stored: BitsStored of the source.
        slice_times: per-slice acquisition time (PHI; memory only), in z order.
    """

    series: SeriesGroup
    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray
    geometry: Geometry
    rescale_slope: float
    rescale_intercept: float
    rescale_applied: bool
    stored_rescale: tuple[float, float] | None
    transfer_syntaxes: tuple[str, ...]
    n_frames: int
    photometric: str
    bits_stored: int
    slice_times: list[dt.datetime | None] = field(default_factory=list, repr=False)

    @property
    def transfer_syntax(self) -> str:
        """The transfer syntax UID (several joined by ``\\`` if the series mixes them)."""
        return "\\".join(self.transfer_syntaxes)


def _native_dtype(bits_allocated: int, signed: bool, where: str) -> np.dtype:
    if bits_allocated not in (8, 16, 32):
        raise UnsupportedImage(f"BitsAllocated {bits_allocated} is not supported (8, 16 or 32)", where)
    return np.dtype(f"{'i' if signed else 'u'}{bits_allocated // 8}")


def _smallest_int_dtype(low: float, high: float) -> np.dtype:
    for candidate in _INT_DTYPES:
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return np.dtype(candidate)
    raise OverflowError(f"rescaled range [{low}, {high}] does not fit in int64")


def _check_matrix(series: SeriesGroup) -> None:
    first = series.first
    layout = (first.rows, first.columns, first.bits_allocated, first.pixel_representation, first.photometric)
    for header in series.headers[1:]:
        other = (header.rows, header.columns, header.bits_allocated, header.pixel_representation,
                 header.photometric)
        if other != layout:
            raise InconsistentGeometry(
                f"matrix/pixel format differs between files: (rows, cols, bits, signed, photometric) "
                f"{layout} vs {other} in {header.path}", series.locator)


def _sorted_geometry(series: SeriesGroup) -> tuple[list[FrameInfo], np.ndarray, tuple[float, float, float],
                                                   tuple[float, float, float]]:
    """Validate volumetric geometry; return frames sorted along the normal, direction, spacing, origin."""
    frames = list(series.frames)
    where = series.locator
    for frame in frames:
        if frame.position is None or frame.orientation is None or frame.pixel_spacing is None:
            raise InconsistentGeometry(
                f"frame {frame.frame_index} of {frame.path} lacks ImagePositionPatient, "
                "ImageOrientationPatient or PixelSpacing; cannot place it in space", where)
    orientation = np.asarray(frames[0].orientation, dtype=np.float64)
    pixel_spacing = np.asarray(frames[0].pixel_spacing, dtype=np.float64)
    for frame in frames[1:]:
        if not np.allclose(frame.orientation, orientation, atol=1e-4):
            raise InconsistentGeometry(f"orientation of {frame.path} (frame {frame.frame_index}) differs "
                                       "from the first slice", where)
        if not np.allclose(frame.pixel_spacing, pixel_spacing, rtol=1e-4, atol=GEOMETRY_ATOL):
            raise InconsistentGeometry(f"pixel spacing of {frame.path} differs from the first slice", where)
    row, col = orientation[:3], orientation[3:]
    if not (math.isclose(np.linalg.norm(row), 1, abs_tol=1e-3) and math.isclose(np.linalg.norm(col), 1, abs_tol=1e-3)
            and abs(float(np.dot(row, col))) < 1e-3):
        raise InconsistentGeometry("ImageOrientationPatient cosines are not orthonormal", where)
    normal = np.cross(row, col)
    positions = np.asarray([f.position for f in frames], dtype=np.float64)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    frames = [frames[i] for i in order]
    positions, along = positions[order], along[order]
    offsets = positions - positions[0] - np.outer(along - along[0], normal)
    if np.abs(offsets).max(initial=0.0) > 0.05:
        raise InconsistentGeometry("slice positions are not stacked along the slice normal "
                                   "(gantry tilt or mixed stacks)", where)
    dz = _slice_step(series, frames, along)
    direction = np.stack([row, col, normal])
    spacing = (dz, float(pixel_spacing[0]), float(pixel_spacing[1]))
    return frames, direction, spacing, tuple(float(v) for v in positions[0])  # type: ignore[return-value]


def _slice_step(series: SeriesGroup, frames: list[FrameInfo], along: np.ndarray) -> float:
    where = series.locator
    if len(frames) == 1:
        header = series.first
        return float(header.spacing_between_slices_mm or header.slice_thickness_mm or 1.0)
    steps = np.diff(along)
    duplicate = np.flatnonzero(steps < GEOMETRY_ATOL * 10)
    if duplicate.size:
        i = int(duplicate[0])
        raise DuplicateSlice(
            f"{duplicate.size} duplicate slice position(s); e.g. {frames[i].path} (frame {frames[i].frame_index}) "
            f"and {frames[i + 1].path} (frame {frames[i + 1].frame_index}) both at {along[i]:.3f} mm "
            "along the normal (repeated acquisition or several phases in one series?)", where)
    step = float(np.min(steps))
    bad = np.flatnonzero(np.abs(steps - step) > SPACING_TOLERANCE * step + GEOMETRY_ATOL)
    if bad.size:
        i = int(bad[0])
        ratio = steps[i] / step
        if abs(ratio - round(ratio)) <= SPACING_TOLERANCE * round(ratio):
            raise MissingSlice(
                f"{round(ratio) - 1} slice(s) missing between {along[i]:.3f} and {along[i + 1]:.3f} mm "
                f"along the normal (step {steps[i]:.3f} mm, expected {step:.3f} mm); "
                f"{bad.size} gap(s) in total", where)
        raise MissingSlice(
            f"non-uniform slice spacing: step {steps[i]:.3f} mm between {along[i]:.3f} and {along[i + 1]:.3f} mm "
            f"vs {step:.3f} mm elsewhere (tolerance {SPACING_TOLERANCE:.0%})", where)
    return float(np.mean(steps))


def _rescale_plan(series: SeriesGroup, frames: list[FrameInfo]) -> tuple[np.dtype, bool, tuple[float, float] | None]:
    """Output dtype, whether to apply rescale, and the uniform (slope, intercept) if any."""
    first = series.first
    where = series.locator
    signed = first.pixel_representation == 1
    native = _native_dtype(first.bits_allocated, signed, where)
    pairs = {(f.rescale_slope, f.rescale_intercept) for f in frames}
    uniform = next(iter(pairs)) if len(pairs) == 1 else None
    if pairs == {(1.0, 0.0)}:
        return native, False, uniform
    integer = all(float(s).is_integer() and float(b).is_integer() for s, b in pairs)
    if not integer:
        if uniform is not None:
            return native, False, uniform
        raise InconsistentRescale(
            f"{len(pairs)} different non-integer rescale slope/intercept pairs across slices; "
            "they cannot be stored exactly as one integer array", where)
    bits = first.bits_stored or first.bits_allocated
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    mapped = [v for s, b in pairs for v in (s * low + b, s * high + b)]
    return _smallest_int_dtype(min(mapped), max(mapped)), True, uniform


def _decode_error(exc: Exception, path: str, syntax: str) -> IngestError:
    text = str(exc)
    if isinstance(exc, EOFError) or "less than expected" in text or "truncated" in text.lower():
        return Truncated(f"pixel data ends early ({text})", path)
    name = uid.UID(syntax).name if syntax else "unknown"
    return UndecodableTransferSyntax(f"cannot decode {name} pixel data: {type(exc).__name__}: {text}", path)


def _direct_pixel_offset(handle, header: InstanceHeader, nbytes: int) -> int | None:
    """File offset of the pixel bytes if they can be read directly, else ``None``.

    Direct reading needs native little-endian data on a little-endian host and
    a Pixel Data element that ends the file with exactly ``nbytes`` (+1 pad
    byte when odd) of value; its element header is checked byte for byte.
    """
    if header.transfer_syntax not in _DIRECT_SYNTAXES or sys.byteorder != "little":
        return None
    padded = nbytes + (nbytes & 1)
    try:
        size = handle.seek(0, os.SEEK_END)
    except (OSError, ValueError):
        return None
    start = size - padded
    if header.transfer_syntax == uid.ImplicitVRLittleEndian:
        expected = [_PIXEL_DATA_TAG + struct.pack("<L", padded)]
    else:
        length = struct.pack("<L", padded)
        expected = [_PIXEL_DATA_TAG + vr + b"\x00\x00" + length for vr in (b"OW", b"OB")]
    width = len(expected[0])
    if start - width < 0:
        return None
    handle.seek(start - width)
    if handle.read(width) not in expected:
        return None
    return start


def _store_frame(array: np.ndarray, z: int, pixels: np.ndarray, frame: FrameInfo, apply: bool,
                 path: str, index: int) -> None:
    """Put one decoded frame into its slot, applying an integer rescale if planned."""
    info = np.iinfo(array.dtype)
    if pixels.shape != array.shape[1:]:
        raise UnsupportedImage(f"frame {index} decodes to shape {pixels.shape}, header says "
                               f"{array.shape[1:]}", path)
    if apply:
        values = pixels.astype(np.int64) * int(frame.rescale_slope) + int(frame.rescale_intercept)
    else:
        values = pixels
    if values.dtype != array.dtype and values.size and (values.min() < info.min or values.max() > info.max):
        raise InconsistentRescale(
            f"frame {index} has values outside the {array.dtype} range implied by BitsStored", path)
    array[z] = values


def _fill_direct(handle, array: np.ndarray, header: InstanceHeader, wanted: dict[int, int],
                 frames: list[FrameInfo], apply: bool, native: np.dtype) -> bool:
    """Read a file's native frames straight into their slots; ``False`` if not possible."""
    frame_bytes = header.rows * header.columns * native.itemsize
    start = _direct_pixel_offset(handle, header, frame_bytes * header.n_frames)
    if start is None:
        return False
    shift = header.bits_allocated - header.bits_stored if 0 < header.bits_stored < header.bits_allocated else 0
    scratch = None if native == array.dtype and not apply else np.empty(array.shape[1:], dtype=native)
    for index, z in sorted(wanted.items()):
        target = array[z] if scratch is None else scratch
        handle.seek(start + index * frame_bytes)
        if handle.readinto(memoryview(target).cast("B")) != frame_bytes:
            raise Truncated(f"pixel data of frame {index} ends early", header.path)
        if shift:  # what pydicom's native decoder does with unused high bits (correct_unused_bits)
            np.left_shift(target, shift, out=target)
            np.right_shift(target, shift, out=target)
        if scratch is not None:
            _store_frame(array, z, scratch, frames[z], apply, header.path, index)
    return True


def _fill_mosaic(handle, array: np.ndarray, header: InstanceHeader, wanted: dict[int, int],
                 frames: list[FrameInfo], apply: bool) -> None:
    """Decode a Siemens mosaic once and store the tiles it was un-mosaicked into (:mod:`breastflow.dicom.mosaic`)."""
    check_encapsulated(handle, replace(header, n_frames=1))  # the file holds one (tiled) frame
    handle.seek(0)
    decoded = list(iter_pixels(handle))
    if len(decoded) != 1:
        raise UnsupportedImage(f"a mosaic decodes to {len(decoded)} frames; expected one tiled image", header.path)
    tiles = mosaic_tiles(decoded[0], header)
    for index, z in sorted(wanted.items()):
        _store_frame(array, z, tiles[index], frames[z], apply, header.path, index)


def _check_complete(handle, header: InstanceHeader) -> None:
    """Raise :class:`Truncated` unless the file holds all its pixel data (before pydicom decodes it).

    Compressed: every frame complete (:func:`check_encapsulated`). Native (not
    read directly, e.g. big endian, or a file cut after planning): the Pixel
    Data element's declared length fits in the file. Deflated data is left to
    the inflater.
    """
    if is_encapsulated(header.transfer_syntax):
        check_encapsulated(handle, header)
    elif header.transfer_syntax != uid.DeflatedExplicitVRLittleEndian:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(pixel_data_offset(handle, header.path))
        check_pixel_element(handle, header.path, header.transfer_syntax, size)


def _fill(array: np.ndarray, series: SeriesGroup, frames: list[FrameInfo], apply: bool,
          storage_options: dict | None) -> None:
    """Decode every frame into its z slot of the preallocated ``array``."""
    slot: dict[str, dict[int, int]] = defaultdict(dict)
    for z, frame in enumerate(frames):
        slot[frame.path][frame.frame_index] = z
    first = series.first
    native = _native_dtype(first.bits_allocated, first.pixel_representation == 1, series.locator)
    for header in series.headers:
        wanted = slot[header.path]
        seen = 0
        try:
            with open_binary(header.path, storage_options) as handle:
                if header.mosaic_images:  # Siemens mosaic: one tiled image, cut into its slices
                    _fill_mosaic(handle, array, header, wanted, frames, apply)
                    continue
                if _fill_direct(handle, array, header, wanted, frames, apply, native):
                    continue
                _check_complete(handle, header)  # a cut JPEG/JPEG-LS frame decodes to garbage otherwise
                handle.seek(0)
                for index, pixels in enumerate(iter_pixels(handle)):
                    if index not in wanted:
                        continue
                    _store_frame(array, wanted[index], pixels, frames[wanted[index]], apply, header.path, index)
                    seen += 1
        except IngestError:
            raise
        except Exception as exc:
            raise _decode_error(exc, header.path, header.transfer_syntax) from exc
        if seen != len(wanted):
            raise Truncated(f"decoded {seen} of {len(wanted)} frames", header.path)


def read_volume(series: SeriesGroup, storage_options: dict | None = None) -> SeriesVolume:
    """Decode and validate one series.

    Args:
        series: from :func:`breastflow.dicom.series.group_series`.
        storage_options: fsspec options for remote files.

    Returns:
        The :class:`SeriesVolume` (array ``(Z, Y, X)``, integer dtype).

    Raises:
        InconsistentGeometry: mixed orientation/matrix/pixel spacing, missing positions.
        DuplicateSlice: two slices at one position.
        MissingSlice: a gap or non-uniform spacing.
        InconsistentRescale: per-slice non-integer rescale, or values outside BitsStored.
        UndecodableTransferSyntax: no handler, or a corrupt compressed stream.
        Truncated: pixel data shorter than declared.
        UnsupportedImage: unsupported bit depth or frame shape.
        MosaicUnsupported: a Siemens mosaic (ImageType MOSAIC).
    """
    mosaic = mosaic_problem(series)  # never store a mosaic's tiled image as one slice
    if mosaic is not None:
        raise mosaic
    _check_matrix(series)
    first = series.first
    if series.is_projection:
        if series.n_frames != 1:
            raise InconsistentGeometry(f"projection series with {series.n_frames} images; "
                                       "one image per series is expected", series.locator)
        frames = list(series.frames)
        spacing_yx = frames[0].pixel_spacing or (1.0, 1.0)
        spacing = (1.0, float(spacing_yx[0]), float(spacing_yx[1]))
        direction, origin = np.eye(3), (0.0, 0.0, 0.0)
        geometry = Geometry.PROJECTION
    else:
        frames, direction, spacing, origin = _sorted_geometry(series)
        geometry = Geometry.VOLUME
    dtype, apply, uniform = _rescale_plan(series, frames)
    array = np.empty((len(frames), first.rows, first.columns), dtype=dtype)
    _fill(array, series, frames, apply, storage_options)
    keep_slope, keep_intercept = (1.0, 0.0) if apply or uniform is None else uniform
    return SeriesVolume(
        series=series,
        array=array,
        spacing_mm=spacing,
        origin_mm=origin,
        direction=direction,
        geometry=geometry,
        rescale_slope=float(keep_slope),
        rescale_intercept=float(keep_intercept),
        rescale_applied=apply,
        stored_rescale=uniform,
        transfer_syntaxes=tuple(sorted({h.transfer_syntax for h in series.headers})),
        n_frames=len(frames),
        photometric=first.photometric,
        bits_stored=first.bits_stored,
        slice_times=[f.acquisition_datetime for f in frames],
    )
