"""The tag scanner gives exactly pydicom's header, or declines (then pydicom reads the file)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset

from breastflow.dicom.discover import probe_header
from breastflow.dicom.fast_header import scan_header
from breastflow.dicom.header import header_from_dataset
from breastflow.phantom.config import TransferSyntax

#: pydicom's bundled test files (several vendors, syntaxes, malformed ones); read
#: from disk directly, because ``get_testdata_files`` tries to download more.
_TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"
#: pydicom-data's files (more vendors and syntaxes), where the package is installed.
_DATA_STORE = Path(pydicom.data.__file__).parents[2] / "data_store" / "data"


def _pydicom_header(path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return header_from_dataset(pydicom.dcmread(path, stop_before_pixels=True), path)


def test_pydicom_test_files_scan_as_pydicom_reads_them():
    """Every bundled file the scanner accepts gives pydicom's InstanceHeader; odd ones are declined."""
    accepted = 0
    files = [p for root in (_TEST_FILES, _DATA_STORE) if root.is_dir() for p in root.rglob("*")]
    for path in sorted(str(p) for p in files if p.is_file() and p.stat().st_size < 8 << 20):
        with open(path, "rb") as handle:
            scanned = scan_header(handle, path)
        if scanned is None:
            continue
        accepted += 1
        assert scanned.header == _pydicom_header(path), path
        with open(path, "rb") as handle:
            handle.seek(scanned.pixel_offset)
            assert handle.read(4) in (b"\xe0\x7f\x10\x00", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00"), path
    assert accepted >= 60  # explicit/implicit little endian and compressed syntaxes are scanned


def _rewrite(path: Path, syntax: str) -> Path:
    """The same object re-encoded in another uncompressed transfer syntax."""
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    target = path.with_name(path.name + "-" + syntax.rsplit(".", 1)[-1])
    pydicom.dcmwrite(target, ds, implicit_vr=syntax == uid.ImplicitVRLittleEndian,
                     little_endian=syntax != uid.ExplicitVRBigEndian, force_encoding=True)
    return target


@pytest.mark.parametrize("syntax", [TransferSyntax.EXPLICIT_LE, TransferSyntax.RLE, "implicit"])
def test_synthetic_series_scan_and_probe_like_pydicom(make_series, syntax):
    if syntax == "implicit":
        written = make_series(slope=2.0, intercept=-1024.0)
        paths = [_rewrite(Path(p), uid.ImplicitVRLittleEndian) for p in written.paths]
    else:
        paths = make_series(syntax=syntax, slope=2.0, intercept=-1024.0).paths
    for path in paths:
        with open(path, "rb") as handle:
            scanned = scan_header(handle, str(path))
        assert scanned is not None
        assert scanned.header == _pydicom_header(str(path)) == probe_header(str(path))


def test_declines_big_endian_and_truncated_headers(make_series, tmp_path):
    big = _rewrite(Path(make_series().paths[0]), uid.ExplicitVRBigEndian)
    with open(big, "rb") as handle:
        assert scan_header(handle, str(big)) is None
    data = Path(make_series().paths[0]).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:400])  # header cut before Pixel Data: pydicom decides
    with open(cut, "rb") as handle:
        assert scan_header(handle, str(cut)) is None


_TEXT = st.text(alphabet=st.sampled_from(list("AB z09.\\-_^ \x00")), max_size=12)
_NUMBER = st.one_of(st.floats(-1e4, 1e4, allow_nan=False).map(lambda v: f"{v:.6g}"),
                    st.sampled_from(["", " ", "1\\2", " 3 ", "+.5", "1e3", "-0", "1.5\\"]))


_BASE = pydicom.dcmread(get_testdata_file("MR_small.dcm"))


@settings(max_examples=40, deadline=None)
@given(description=_TEXT, patient=_TEXT, image_type=_TEXT, modality=_TEXT, view=_TEXT,
       thickness=_NUMBER, echo=_NUMBER, number=st.sampled_from(["", "7", " 12", "1\\2", "3.0", "+4 "]))
def test_random_values_convert_exactly_as_pydicom(tmp_path_factory, description, patient, image_type,
                                                  modality, view, thickness, echo, number):
    """Padding, backslashes, NULs, empty and odd numbers: same values as pydicom, or declined."""
    ds = _BASE.copy()
    for keyword, value in (("SeriesDescription", description), ("PatientID", patient), ("ImageType", image_type),
                           ("Modality", modality), ("ViewPosition", view), ("SliceThickness", thickness),
                           ("EchoTime", echo), ("SeriesNumber", number)):
        if keyword not in ds:
            setattr(ds, keyword, None)
        ds[keyword].value = value.encode("ascii")  # raw bytes, no pydicom validation on write
    target = tmp_path_factory.mktemp("random") / "random.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(target, enforce_file_format=True)
    with open(target, "rb") as handle:
        scanned = scan_header(handle, str(target))
    try:
        reference = _pydicom_header(str(target))
    except ValueError:  # pydicom refuses the value: the scanner must decline too
        assert scanned is None
        return
    if scanned is not None:
        assert scanned.header == reference


def test_meta_without_transfer_syntax_is_left_to_pydicom(make_series):
    path = make_series(n_slices=1).paths[0]
    ds = pydicom.dcmread(path)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    raw = io.BytesIO()
    ds.file_meta = meta
    pydicom.dcmwrite(raw, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    data = raw.getvalue()
    assert scan_header(io.BytesIO(data), "x") is None
    assert np.frombuffer(data[128:132], np.uint8).tobytes() == b"DICM"
