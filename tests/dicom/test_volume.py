"""Volumes compared voxel-for-voxel with what pydicom reads directly; geometry and decode errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.errors import (
    DuplicateSlice,
    InconsistentGeometry,
    InconsistentRescale,
    MissingSlice,
    UndecodableTransferSyntax,
)
from breastflow.dicom.series import group_series
from breastflow.dicom.volume import read_volume
from breastflow.phantom.config import TransferSyntax


def _series_of(paths: list) -> object:
    headers, problems = probe_headers([str(p) for p in paths])
    assert problems == [], problems
    groups = group_series(headers)
    assert len(groups) == 1
    return groups[0]


def _reference(path: str) -> np.ndarray:
    """pydicom's own decode, rescaled exactly in int64 when the header asks for an integer rescale."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.int64)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    if slope.is_integer() and intercept.is_integer():
        pixels = pixels * int(slope) + int(intercept)
    return pixels


# (pydicom test file, what it covers)
FOREIGN = [
    ("MR_small.dcm", "explicit LE, Toshiba"),
    ("MR_small_implicit.dcm", "implicit LE"),
    ("MR_small_bigendian.dcm", "explicit big endian"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 lossless"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless"),
    ("MR_small_RLE.dcm", "RLE lossless"),
    ("MR2_UNCR.dcm", "Philips, non-integer rescale kept"),
    ("MR2_J2KR.dcm", "Philips, JPEG 2000"),
    ("MR-SIEMENS-DICOM-WithOverlays.dcm", "Siemens"),
    ("CT_small.dcm", "GE CT, integer rescale applied"),
    ("693_J2KR.dcm", "CT JPEG 2000 signed"),
]


@pytest.mark.parametrize(("name", "what"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_foreign_single_files_match_pydicom(name: str, what: str) -> None:
    path = get_testdata_file(name)
    volume = read_volume(_series_of([path]))
    reference = _reference(path)
    assert volume.array.shape == (1, *reference.shape)
    assert volume.array.dtype.kind in "iu"
    np.testing.assert_array_equal(volume.array[0].astype(np.int64), reference)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert volume.transfer_syntax == ds.file_meta.TransferSyntaxUID
    slope = float(ds.get("RescaleSlope", 1))
    if not slope.is_integer():
        assert volume.rescale_slope == pytest.approx(slope) and not volume.rescale_applied


def test_jpeg_lossless_decodes(tmp_path: Path) -> None:
    """JPEG Lossless (process 14): pydicom's only sample is secondary capture, relabelled as CT here."""
    ds = pydicom.dcmread(get_testdata_file("JPEG-LL.dcm"))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid.CTImageStorage
    ds.Modality = "CT"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    path = tmp_path / "jpegll"
    ds.save_as(path)
    volume = read_volume(_series_of([path]))
    np.testing.assert_array_equal(volume.array[0].astype(np.int64), _reference(str(path)))
    assert volume.transfer_syntax == uid.JPEGLosslessSV1


def _enhanced_with_geometry(name: str, folder: Path) -> tuple[Path, list[float]]:
    """Add plane position/orientation functional groups (frames deliberately out of z order)."""
    ds = pydicom.dcmread(get_testdata_file(name))
    n = int(ds.NumberOfFrames)
    zs = [float(z) for z in np.random.default_rng(3).permutation(n) * 1.2]
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.9], 1.2
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for z in zs:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [-30.0, -20.0, z]
        item.PlanePositionSequence = Sequence([position])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    path = folder / name.replace(".dcm", "")
    ds.save_as(path)
    return path, zs


ENHANCED = ["emri_small.dcm", "emri_small_big_endian.dcm", "emri_small_jpeg_ls_lossless.dcm",
            "emri_small_jpeg_2k_lossless.dcm", "emri_small_RLE.dcm"]


@pytest.mark.parametrize("name", ENHANCED)
def test_enhanced_multiframe_sorted_by_position(name: str, tmp_path: Path) -> None:
    path, zs = _enhanced_with_geometry(name, tmp_path)
    volume = read_volume(_series_of([path]))
    reference = pydicom.dcmread(path).pixel_array[np.argsort(zs)]
    np.testing.assert_array_equal(volume.array, reference)
    assert volume.spacing_mm == pytest.approx((1.2, 0.9, 0.9))
    assert volume.origin_mm == pytest.approx((-30.0, -20.0, 0.0))
    assert volume.n_frames == 10 and volume.array.dtype == np.uint16


def test_enhanced_without_plane_positions_is_rejected() -> None:
    with pytest.raises(InconsistentGeometry, match="lacks ImagePositionPatient") as info:
        read_volume(_series_of([get_testdata_file("emri_small.dcm")]))
    assert info.value.reason.value == "inconsistent-geometry"


SYNTAXES = list(TransferSyntax)


@pytest.mark.parametrize("syntax", SYNTAXES, ids=[s.value for s in SYNTAXES])
def test_synthetic_series_sorted_and_lossless(make_series, syntax: TransferSyntax) -> None:
    written = make_series(n_slices=5, positions=[5.0, -2.5, 0.0, 7.5, 2.5], syntax=syntax, rows=32, columns=40)
    volume = read_volume(_series_of(written.paths))
    np.testing.assert_array_equal(volume.array, written.expected)
    assert volume.array.dtype == np.uint16
    assert volume.spacing_mm == pytest.approx((2.5, 0.7, 0.8))
    assert volume.origin_mm == pytest.approx((-40.0, -30.0, -2.5))
    np.testing.assert_allclose(volume.direction, np.eye(3))


def test_oblique_series_sorted_along_normal(make_series) -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    written = make_series(n_slices=4, positions=[3.0, 0.0, 9.0, 6.0], orientation=(1, 0, 0, 0, c, s))
    volume = read_volume(_series_of(written.paths))
    np.testing.assert_array_equal(volume.array, written.expected)
    np.testing.assert_allclose(volume.direction[2], [0, -s, c], atol=1e-9)
    assert volume.spacing_mm[0] == pytest.approx(3.0)


def test_integer_rescale_applied_into_smallest_integer_type(make_series) -> None:
    written = make_series(n_slices=3, slope=2.0, intercept=-100.0)
    volume = read_volume(_series_of(written.paths))
    assert volume.array.dtype == np.int16  # 12-bit stored range -> [-100, 8090]
    np.testing.assert_array_equal(volume.array, written.expected.astype(np.int64) * 2 - 100)
    assert volume.rescale_applied and (volume.rescale_slope, volume.rescale_intercept) == (1.0, 0.0)
    assert volume.stored_rescale == (2.0, -100.0)


def test_non_integer_rescale_kept_as_attributes(make_series) -> None:
    written = make_series(n_slices=3, slope=1.25, intercept=0.5)
    volume = read_volume(_series_of(written.paths))
    assert volume.array.dtype == np.uint16
    np.testing.assert_array_equal(volume.array, written.expected)
    assert (volume.rescale_slope, volume.rescale_intercept, volume.rescale_applied) == (1.25, 0.5, False)


def test_per_slice_non_integer_rescale_rejected(make_series, tmp_path: Path) -> None:
    written = make_series(n_slices=3, slope=1.25)
    ds = pydicom.dcmread(written.paths[0])
    ds.RescaleSlope = 1.5
    ds.save_as(written.paths[0])
    with pytest.raises(InconsistentRescale, match="non-integer"):
        read_volume(_series_of(written.paths))


GEOMETRY_CASES = [
    ("duplicate", {"positions": [0.0, 2.5, 2.5, 5.0]}, DuplicateSlice, "duplicate"),
    ("gap", {"positions": [0.0, 2.5, 7.5, 10.0]}, MissingSlice, "1 slice"),
    ("non-uniform", {"positions": [0.0, 2.5, 5.0, 8.6]}, MissingSlice, "non-uniform"),
]


@pytest.mark.parametrize(("label", "kwargs", "error", "match"), GEOMETRY_CASES, ids=[c[0] for c in GEOMETRY_CASES])
def test_bad_slice_positions(make_series, label: str, kwargs: dict, error: type, match: str) -> None:
    written = make_series(**kwargs)
    with pytest.raises(error, match=match) as info:
        read_volume(_series_of(written.paths))
    assert "series 1" in str(info.value)


def test_inconsistent_orientation_and_matrix(make_series) -> None:
    written = make_series(n_slices=4)
    ds = pydicom.dcmread(written.paths[1])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.save_as(written.paths[1])
    with pytest.raises(InconsistentGeometry, match="orientation"):
        read_volume(_series_of(written.paths))
    written = make_series(series="other", n_slices=4)
    ds = pydicom.dcmread(written.paths[2])
    ds.Rows, ds.Columns = 10, 8
    ds.save_as(written.paths[2])
    with pytest.raises(InconsistentGeometry, match="matrix"):
        read_volume(_series_of(written.paths))


def test_corrupt_jpeg2000_stream_is_undecodable(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    data = bytearray(ds.PixelData)
    data[40:400] = b"\xff" * 360  # wreck the codestream after the item header
    ds.PixelData = bytes(data)
    path = tmp_path / "bad-j2k"
    ds.save_as(path)
    with pytest.raises(UndecodableTransferSyntax, match="JPEG 2000"):
        read_volume(_series_of([path]))


def test_syntax_without_handler_is_undecodable(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = uid.MPEG2MPML  # encapsulated, no decoder installed
    path = tmp_path / "mpeg2"
    ds.save_as(path)
    with pytest.raises(UndecodableTransferSyntax) as info:
        read_volume(_series_of([path]))
    assert info.value.to_problem().reason.value == "undecodable-transfer-syntax"
