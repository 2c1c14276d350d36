"""The direct (readinto) path for native little-endian pixel data against pydicom's own decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.series import group_series
from breastflow.dicom.volume import _direct_pixel_offset, read_volume


def _write(tmp_path: Path, name: str, syntax: str, rows: int, columns: int, bits_allocated: int,
           bits_stored: int, signed: bool, raw: np.ndarray, trailing: bool = False) -> Path:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    del ds[0xFFFCFFFC]  # the sample ends with trailing padding; scanner exports usually do not
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    ds.PixelData = raw.tobytes()
    ds["PixelData"].VR = "OW" if bits_allocated > 8 else "OB"
    if trailing:
        ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)  # Data Set Trailing Padding after the pixels
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def _read(path: Path) -> np.ndarray:
    headers, problems = probe_headers([str(path)])
    assert problems == [], problems
    return read_volume(group_series(headers)[0]).array


RNG = np.random.default_rng(7)
# (name, syntax, rows, cols, bits allocated, bits stored, signed, raw pixel words incl. garbage high bits)
CASES = [
    ("u12-garbage-high-bits", uid.ExplicitVRLittleEndian, 6, 5, 16, 12, False,
     RNG.integers(0, 2**16, size=30, dtype=np.uint16)),
    ("s12-negative", uid.ImplicitVRLittleEndian, 4, 7, 16, 12, True,
     RNG.integers(0, 2**16, size=28, dtype=np.uint16)),
    ("s16", uid.ExplicitVRLittleEndian, 5, 5, 16, 16, True, RNG.integers(0, 2**16, size=25, dtype=np.uint16)),
    ("u8-odd-length-padded", uid.ExplicitVRLittleEndian, 3, 5, 8, 8, False,
     RNG.integers(0, 256, size=15, dtype=np.uint8)),
]


@pytest.mark.parametrize(("name", "syntax", "rows", "cols", "alloc", "stored", "signed", "raw"), CASES,
                         ids=[c[0] for c in CASES])
def test_direct_read_matches_pydicom(tmp_path: Path, name, syntax, rows, cols, alloc, stored, signed, raw) -> None:
    path = _write(tmp_path, name, syntax, rows, cols, alloc, stored, signed, raw)
    with open(path, "rb") as handle:
        header = probe_headers([str(path)])[0][0]
        assert _direct_pixel_offset(handle, header, rows * cols * alloc // 8) is not None
    reference = pydicom.dcmread(path).pixel_array  # pydicom corrects unused high bits
    got = _read(path)
    assert got.dtype == reference.dtype
    np.testing.assert_array_equal(got[0], reference)


def test_pydicom_sample_with_trailing_padding_falls_back() -> None:
    path = get_testdata_file("MR_small.dcm")
    header = probe_headers([path])[0][0]
    with open(path, "rb") as handle:
        assert _direct_pixel_offset(handle, header, header.rows * header.columns * 2) is None
    np.testing.assert_array_equal(_read(Path(path))[0], pydicom.dcmread(path).pixel_array)


def test_trailing_element_falls_back_to_pydicom(tmp_path: Path) -> None:
    raw = RNG.integers(0, 4096, size=20, dtype=np.uint16)
    path = _write(tmp_path, "trailing", uid.ExplicitVRLittleEndian, 4, 5, 16, 12, False, raw, trailing=True)
    with open(path, "rb") as handle:
        header = probe_headers([str(path)])[0][0]
        assert _direct_pixel_offset(handle, header, 40) is None
    np.testing.assert_array_equal(_read(path)[0], pydicom.dcmread(path).pixel_array)


def test_big_endian_is_not_read_directly() -> None:
    path = get_testdata_file("MR_small_bigendian.dcm")
    header = probe_headers([path])[0][0]
    with open(path, "rb") as handle:
        assert _direct_pixel_offset(handle, header, header.rows * header.columns * 2) is None
