"""Truncated files are rejected as ``truncated``: compressed frames cut short, headers cut short.

Test files are real ones (pydicom's test files, pydicom-data) compressed with
pydicom's encoders and cut at fractions of their pixel data or of the file.
pydicom's frame iterator decodes a JPEG Lossless / JPEG-LS frame cut short
into a full-size frame of wrong values without an error, so each cut must be
caught by the encapsulation check (:mod:`breastflow.dicom.encapsulated`), at
the probe and again at decode time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.sequence import Sequence

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.errors import Reason, Truncated
from breastflow.dicom.series import SeriesGroup, group_series
from breastflow.dicom.volume import read_volume

# (label, pydicom test file, syntax to compress to (None: as stored))
COMPRESSED = [
    ("jpeg-lossless-sv1", "JPEG-LL.dcm", None),  # .70; pydicom has no JPEG Lossless encoder
    ("jpeg-ls", "MR_small.dcm", uid.JPEGLSLossless),
    ("rle", "MR_small.dcm", uid.RLELossless),
    ("jpeg-2000", "MR_small_jp2klossless.dcm", None),
]
CUTS = [0.3, 0.5, 0.9]


def _as_mr(ds: Dataset) -> None:
    """Relabel a secondary capture as an MR slice with geometry (pydicom's only JPEG Lossless sample)."""
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = uid.MRImageStorage
    ds.Modality = "MR"
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]


def _compressed(tmp_path: Path, name: str, syntax: str | None) -> Path:
    ds = pydicom.dcmread(get_testdata_file(name))
    if ds.SOPClassUID != uid.MRImageStorage:
        _as_mr(ds)
    if syntax is not None:
        ds.compress(syntax, generate_instance_uid=False)
    path = tmp_path / f"{Path(name).stem}-{syntax or 'stored'}"
    ds.save_as(path)
    return path


def _pixel_value_span(path: Path) -> tuple[int, int]:
    """(file offset of the Pixel Data value, its length without the sequence delimiter)."""
    with open(path, "rb") as handle:
        pydicom.dcmread(handle, stop_before_pixels=True)
        start = handle.tell() + 12
    return start, len(pydicom.dcmread(path).PixelData)


def _cut(path: Path, fraction: float, target: Path) -> Path:
    start, length = _pixel_value_span(path)
    target.write_bytes(path.read_bytes()[:start + int(length * fraction)])
    return target


def _one_series(paths: list[Path]) -> SeriesGroup:
    headers, problems = probe_headers([str(p) for p in paths])
    assert problems == [], problems
    (group,) = group_series(headers)
    return group


@pytest.mark.parametrize(("label", "name", "syntax"), COMPRESSED, ids=[c[0] for c in COMPRESSED])
def test_intact_compressed_slice_reads_voxel_exact(tmp_path: Path, label: str, name: str, syntax: str | None) -> None:
    path = _compressed(tmp_path, name, syntax)
    volume = read_volume(_one_series([path]))
    np.testing.assert_array_equal(volume.array[0], pydicom.dcmread(path).pixel_array)


@pytest.mark.parametrize("fraction", CUTS)
@pytest.mark.parametrize(("label", "name", "syntax"), COMPRESSED, ids=[c[0] for c in COMPRESSED])
def test_cut_compressed_slice_is_truncated_at_probe_and_at_decode(tmp_path: Path, label: str, name: str,
                                                                   syntax: str | None, fraction: float) -> None:
    path = _compressed(tmp_path, name, syntax)
    group = _one_series([path])  # probed while intact, as a remote file read later would be
    _cut(path, fraction, path)
    headers, problems = probe_headers([str(path)])
    assert headers == [] and [p.reason for p in problems] == [Reason.TRUNCATED], problems
    # the probe keeps the file's series (memory only) so planning can hold the series back
    assert (problems[0].study_uid, problems[0].series_uid) == (group.study_uid, group.series_uid)
    assert "study_uid" not in problems[0].to_dict() and group.series_uid not in repr(problems[0])
    with pytest.raises(Truncated, match="remain in the file|delimiter") as info:
        read_volume(group)
    assert info.value.where == str(path)


def test_cut_exactly_at_an_item_boundary_lacks_the_sequence_delimiter(tmp_path: Path) -> None:
    path = _compressed(tmp_path, "MR_small.dcm", uid.JPEGLSLossless)
    group = _one_series([path])
    start, length = _pixel_value_span(path)
    data = path.read_bytes()
    assert data[start + length:start + length + 8] == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    path.write_bytes(data[:start + length])  # every item whole, the delimiter gone
    _, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.TRUNCATED] and "delimiter" in problems[0].message
    with pytest.raises(Truncated, match="sequence delimiter"):
        read_volume(group)


@pytest.mark.parametrize(("label", "name", "syntax"), [c for c in COMPRESSED if c[0] != "rle"],
                         ids=[c[0] for c in COMPRESSED if c[0] != "rle"])
def test_stream_cut_inside_a_whole_container_lacks_its_end_marker(tmp_path: Path, label: str, name: str,
                                                                    syntax: str | None) -> None:
    """Item lengths rewritten after the cut (a re-encapsulated short stream): only the FFD9 check sees it."""
    path = _compressed(tmp_path, name, syntax)
    ds = pydicom.dcmread(path)
    stream = b"".join(generate_fragments(ds.PixelData))
    ds.PixelData = encapsulate([stream[: len(stream) * 2 // 3]])
    ds.save_as(path)
    _, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.TRUNCATED] and "FFD9" in problems[0].message


def _enhanced_jpegls(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("emri_small_jpeg_ls_lossless.dcm"))
    shared, orientation, measures = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.9], 1.2
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for z in range(int(ds.NumberOfFrames)):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [-30.0, -20.0, 1.2 * z]
        item.PlanePositionSequence = Sequence([position])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    path = tmp_path / "enhanced-jpegls"
    ds.save_as(path)
    return path


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_cut_multiframe_jpegls_is_truncated(tmp_path: Path, fraction: float) -> None:
    path = _enhanced_jpegls(tmp_path)
    group = _one_series([path])
    np.testing.assert_array_equal(read_volume(group).array, pydicom.dcmread(path).pixel_array)
    _cut(path, fraction, path)
    _, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.TRUNCATED], problems
    with pytest.raises(Truncated):
        read_volume(group)


@pytest.mark.parametrize("fragments_per_frame", [1, 2])
def test_multiframe_frame_without_end_marker_is_truncated(tmp_path: Path, fragments_per_frame: int) -> None:
    """Every frame's end is checked, not only the file's last (frames found by count or offset table)."""
    path = _enhanced_jpegls(tmp_path)
    ds = pydicom.dcmread(path)
    frames = list(generate_fragments(ds.PixelData))[1:]  # after the (empty) basic offset table
    assert len(frames) == int(ds.NumberOfFrames)
    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments_per_frame)
    ds.save_as(path)
    np.testing.assert_array_equal(read_volume(_one_series([path])).array, pydicom.dcmread(path).pixel_array)
    frames[3] = frames[3][: len(frames[3]) // 2]
    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments_per_frame)
    ds.save_as(path)
    _, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.TRUNCATED] and "frame 3" in problems[0].message


# real files of several vendors and encodings, cut inside the header or the pixel data
HEADER_CUT_FILES = ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                    "MR_small_jpeg_ls_lossless.dcm", "MR2_UNCR.dcm", "MR2_J2KR.dcm",
                    "MR-SIEMENS-DICOM-WithOverlays.dcm", "CT_small.dcm", "emri_small.dcm"]


@pytest.mark.parametrize("fraction", [0.01, 0.02, 0.05, 0.3])
@pytest.mark.parametrize("name", HEADER_CUT_FILES)
def test_file_cut_at_a_fraction_is_truncated(tmp_path: Path, name: str, fraction: float) -> None:
    data = Path(get_testdata_file(name)).read_bytes()
    cut = int(len(data) * fraction)
    path = tmp_path / "cut"
    path.write_bytes(data[:cut])
    headers, problems = probe_headers([str(path)])
    expected = Reason.NOT_DICOM if cut < 132 else Reason.TRUNCATED  # before the DICM magic: nothing says DICOM
    assert headers == [] and [p.reason for p in problems] == [expected], problems


def test_header_cut_before_the_image_attributes_is_truncated_not_unsupported(tmp_path: Path) -> None:
    """The reported case: identity parsed, PhotometricInterpretation not reached (was ``unsupported-image``)."""
    source = get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm")
    with open(source, "rb") as handle:
        ds = pydicom.dcmread(handle, stop_before_pixels=True)
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    tags = sorted(ds.keys())
    for tag in [t for t in tags if t >= 0x00280000]:
        del ds[tag]  # the file now ends at an element boundary, after the UIDs, before Rows/Photometric
    path = tmp_path / "cut-before-pixel-module"
    ds.save_as(path, enforce_file_format=True)
    headers, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.TRUNCATED], problems
    assert "PhotometricInterpretation" in problems[0].message
    assert problems[0].series_uid == ds.SeriesInstanceUID


def test_image_without_pixel_data_is_still_no_pixel_data(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds.PixelData
    path = tmp_path / "nopix"
    ds.save_as(path)
    _, problems = probe_headers([str(path)])
    assert [p.reason for p in problems] == [Reason.NO_PIXEL_DATA]


@pytest.mark.parametrize("name", ["MR2_UNCR.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"])
def test_native_file_cut_after_probing_is_truncated_at_decode(tmp_path: Path, name: str) -> None:
    """Not only compressed data: a native file cut after planning (or remote) is ``truncated``, not undecodable."""
    path = tmp_path / "native"
    path.write_bytes(Path(get_testdata_file(name)).read_bytes())
    group = _one_series([path])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Truncated, match="remain in the file"):
        read_volume(group)
