"""Files sharing a SOPInstanceUID: identical copies kept once, different ones all rejected."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.duplicates import resolve_duplicates
from breastflow.dicom.errors import Reason
from breastflow.dicom.series import group_series
from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.dicom_io import save


def _probe(paths: list[Path]):
    headers, problems = probe_headers([str(p) for p in paths])
    assert problems == [], problems
    return headers


def test_identical_copy_is_kept_once(make_series, tmp_path: Path) -> None:
    written = make_series(n_slices=4)
    copy = tmp_path / "copy" / "x"
    copy.parent.mkdir()
    shutil.copy(written.paths[1], copy)
    headers = _probe([*written.paths, copy])
    kept, problems = resolve_duplicates(headers)
    assert problems == []
    expected = {str(p) for p in written.paths} - {str(written.paths[1])} | {str(copy)}  # first path in sort order
    assert len(kept) == 4 and {h.path for h in kept} == expected
    (group,) = group_series(kept)
    assert len(group.headers) == 4


def test_transcoded_copy_with_the_same_pixels_is_kept_once(make_series, tmp_path: Path) -> None:
    written = make_series(n_slices=3)
    ds = pydicom.dcmread(written.paths[0])
    del ds.file_meta
    copy = tmp_path / "jpegls-copy"
    save(ds, copy, TransferSyntax.JPEGLS_LOSSLESS)
    kept, problems = resolve_duplicates(_probe([*written.paths, copy]))
    assert problems == [] and len(kept) == 3


@pytest.mark.parametrize("n_copies", [2, 3])
def test_copies_with_different_pixels_are_all_rejected(make_series, tmp_path: Path, n_copies: int) -> None:
    written = make_series(n_slices=4)
    original = written.paths[2]
    copies = []
    for k in range(1, n_copies):
        ds = pydicom.dcmread(original)
        pixels = ds.pixel_array.copy()
        pixels[0, k] += 1  # one voxel differs: a re-reconstruction under the old UID
        ds.PixelData = pixels.tobytes()
        path = tmp_path / f"edited-{k}"
        ds.save_as(path)
        copies.append(path)
    kept, problems = resolve_duplicates(_probe([*written.paths, *copies]))
    rejected = {str(original), *map(str, copies)}
    assert {h.path for h in kept} == {str(p) for p in written.paths} - rejected  # never one picked
    assert sorted(p.where for p in problems) == sorted(rejected)
    assert {p.reason for p in problems} == {Reason.CONFLICTING_DUPLICATE}
    for problem in problems:  # each names every other copy
        assert all(other in problem.message for other in rejected - {problem.where})
        assert "pixel data differs" in problem.message
        assert problem.series_uid == written.series_uid  # ties it to its series (memory only)
        assert "series_uid" not in problem.to_dict()
