"""Discovery and header probing: every bad file gets its own reason, good files their header."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.errors import Reason


def test_discover_lists_every_file_sorted_and_ignores_names(make_series, tmp_path: Path) -> None:
    written = make_series(n_slices=4)
    (tmp_path / "dicom" / "notes.txt").write_text("not dicom")
    found = discover(str(tmp_path / "dicom"))
    assert found == sorted(found)
    assert set(found) == {str(p) for p in written.paths} | {str(tmp_path / "dicom" / "notes.txt")}


def test_discover_missing_source_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover(str(tmp_path / "nowhere"))


def _copy(name: str, folder: Path) -> Path:
    source = Path(get_testdata_file(name))
    target = folder / f"f{abs(hash(name)) % 10**6}"
    target.write_bytes(source.read_bytes())
    return target


CASES = [
    ("README-like text", None, Reason.NOT_DICOM),
    ("MR_truncated.dcm", "MR_truncated.dcm", Reason.TRUNCATED),
    ("structured report", "reportsi.dcm", Reason.UNSUPPORTED_SOP_CLASS),
    ("RT plan", "rtplan.dcm", Reason.UNSUPPORTED_SOP_CLASS),
    ("colour ultrasound", "US1_UNCR.dcm", Reason.UNSUPPORTED_SOP_CLASS),
    ("MR without pixel data", "no-pixels", Reason.NO_PIXEL_DATA),
    ("header cut short", "cut-header", Reason.TRUNCATED),
]


@pytest.mark.parametrize(("label", "name", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_files_become_problems_with_reasons(tmp_path: Path, label: str, name: str | None,
                                                reason: Reason) -> None:
    if name is None:
        path = tmp_path / "readme"
        path.write_text("hello, I am not DICOM\n" * 20)
    elif name == "no-pixels":
        ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        del ds.PixelData
        path = tmp_path / "nopix"
        ds.save_as(path)
    elif name == "cut-header":
        data = Path(get_testdata_file("MR_small.dcm")).read_bytes()
        path = tmp_path / "cut"
        path.write_bytes(data[:700])
    else:
        path = _copy(name, tmp_path)
    headers, problems = probe_headers([str(path)])
    assert headers == []
    assert [p.reason for p in problems] == [reason], problems
    assert problems[0].where == str(path)
    assert problems[0].to_dict()["reason"] == reason.value


def test_probe_keeps_good_files_beside_bad_ones(make_series, tmp_path: Path) -> None:
    written = make_series(n_slices=3)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    headers, problems = probe_headers([str(p) for p in written.paths] + [str(junk), str(tmp_path)])
    assert len(headers) == 3 and {h.series_uid for h in headers} == {written.series_uid}
    assert sorted(p.reason for p in problems) == sorted([Reason.NOT_DICOM, Reason.UNREADABLE])


def test_probe_reads_headers_without_pixels_over_s3(make_series, s3_dicom) -> None:
    written = make_series(n_slices=3)
    url, options = s3_dicom(written.paths)
    found = discover(url, options)
    assert len(found) == 3 and all(f.startswith("s3://") for f in found)
    headers, problems = probe_headers(found, options)
    assert problems == [] and len(headers) == 3
    assert {h.rows for h in headers} == {8}
