"""A series that lost files (truncated, conflicting duplicates, undecodable) is never committed.

Built from the phantom cohort (study 0 uncompressed, study 1 JPEG-LS) with
perturbed copies of its files. Planning is checked directly (fast); one run
through :func:`run_ingest` checks the report and that nothing of those series
reaches the store.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import encapsulate, generate_fragments

from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.plan import IngestPlan, plan_ingest
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import ExitStatus, Outcome
from breastflow.ingest.series import ingest_series
from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study
from breastflow.store.catalog import read_catalog
from breastflow.store.commit import read_commits
from breastflow.store.fs import StoreLocation


def _edge_slice(series_dir: Path) -> Path:
    """The first slice along the slice normal (its loss would leave uniform spacing: undetectable later)."""
    def along(path: Path) -> float:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        return float(np.dot(np.cross(iop[:3], iop[3:]), np.asarray(ds.ImagePositionPatient, dtype=float)))
    return min(series_dir.iterdir(), key=along)


def _cut_pixels(path: Path, fraction: float = 0.5) -> None:
    with open(path, "rb") as handle:
        pydicom.dcmread(handle, stop_before_pixels=True)
        start = handle.tell() + 12
    data = path.read_bytes()
    path.write_bytes(data[:start + int((len(data) - start) * fraction)])


def _plan(source: Path, tmp_path: Path) -> IngestPlan:
    return plan_ingest(str(source), StoreLocation.from_url(str(tmp_path / "store")), Pseudonymiser.from_env())


def _series_dir(source: Path, cohort, study: int, phase: int) -> Path:
    row = cohort.studies[study]
    numbers = [str(row["pre_series_number"]), *str(row["post_series_numbers"]).split(";")]
    return source / row["study_id"] / numbers[phase]


def _entries(plan: IngestPlan, reason: str) -> list:
    return [o for o in plan.outcomes if o.reason == reason]


@pytest.mark.parametrize("study", [0, 1], ids=["uncompressed", "jpeg-ls"])
def test_truncated_edge_slice_holds_its_series_back(tmp_path, source, cohort, study: int) -> None:
    series_dir = _series_dir(source, cohort, study, 2)
    victim = _edge_slice(series_dir)
    n_files = len(list(series_dir.iterdir()))
    _cut_pixels(victim)
    plan = _plan(source, tmp_path)
    (truncated,) = _entries(plan, "truncated")
    assert truncated.where == str(victim)
    (incomplete,) = _entries(plan, "incomplete-series")
    assert incomplete.outcome is Outcome.QUARANTINED and incomplete.series == "post_2"
    assert str(victim) in incomplete.message and "truncated" in incomplete.message
    assert f"({n_files - 1} other files)" in incomplete.message
    pseudo = Pseudonymiser.from_env()
    assert pseudo.path_ref(str(victim)) in incomplete.message  # the store view keeps a PHI-free file reference
    planned = {(j.study, j.series) for j in plan.jobs}
    assert (incomplete.study, "post_2") not in planned
    assert len(plan.jobs) == 9  # every other series of both studies still planned


def test_conflicting_duplicates_are_both_rejected_and_hold_the_series_back(tmp_path, source, cohort) -> None:
    series_dir = _series_dir(source, cohort, 0, 0)
    original = sorted(series_dir.iterdir())[5]
    ds = pydicom.dcmread(original)
    pixels = ds.pixel_array.copy()
    pixels[10, 10] ^= 1
    ds.PixelData = pixels.tobytes()
    twin = source / "resent" / "x1"
    twin.parent.mkdir()
    ds.save_as(twin)
    plan = _plan(source, tmp_path)
    conflicts = _entries(plan, "conflicting-duplicate")
    assert sorted(o.where for o in conflicts) == sorted([str(original), str(twin)])
    assert str(twin) in next(o.message for o in conflicts if o.where == str(original))
    (incomplete,) = _entries(plan, "incomplete-series")
    assert incomplete.series == "pre" and "conflicting-duplicate" in incomplete.message
    assert all(j.series != "pre" or j.study != incomplete.study for j in plan.jobs)


def test_identical_copy_is_deduplicated_silently(tmp_path, source, cohort) -> None:
    series_dir = _series_dir(source, cohort, 1, 0)
    shutil.copytree(series_dir, source / "copied-again")
    plan = _plan(source, tmp_path)
    assert [o for o in plan.outcomes if o.outcome is Outcome.QUARANTINED] == []
    assert len(plan.jobs) == 10
    assert all(len(j.classified.series.headers) == cohort.studies[1]["n_slices"] for j in plan.jobs
               if j.classified.series.first.path.startswith(str(source / "copied-again")))


def test_file_cut_after_planning_quarantines_the_whole_series_at_decode(tmp_path, source, cohort) -> None:
    """What the probe cannot see (a remote file, or one cut after planning) is caught before decoding."""
    plan = _plan(source, tmp_path)
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    job = next(j for j in plan.jobs if j.classified.series.first.transfer_syntax == uid.JPEGLSLossless)
    victim = job.classified.series.headers[len(job.classified.series.headers) // 2].path
    _cut_pixels(Path(victim), 0.9)
    outcome = ingest_series(job, loc)
    assert (outcome.outcome, outcome.reason, outcome.where) == (Outcome.QUARANTINED, "truncated", victim)
    assert read_commits(loc) == []


def test_undecodable_file_quarantines_the_whole_series(tmp_path, source, cohort) -> None:
    """A stream that is complete but corrupt fails to decode: the series is quarantined, nothing committed."""
    plan = _plan(source, tmp_path)
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    job = next(j for j in plan.jobs if j.classified.series.first.transfer_syntax == uid.JPEGLSLossless)
    victim = Path(job.classified.series.headers[3].path)
    ds = pydicom.dcmread(victim)
    stream = bytearray(b"".join(list(generate_fragments(ds.PixelData))[1:]))
    stream[2:6] = b"\xff\x01\xff\x02"  # wreck the JPEG-LS frame header, keep the end marker
    ds.PixelData = encapsulate([bytes(stream)])
    ds.save_as(victim)
    outcome = ingest_series(job, loc)
    assert outcome.outcome is Outcome.QUARANTINED and outcome.where == str(victim)
    assert outcome.reason in ("undecodable-transfer-syntax", "truncated")
    assert read_commits(loc) == []


def test_run_reports_incomplete_series_and_commits_nothing_of_them(tmp_path, source, cohort, dask_client) -> None:
    _cut_pixels(_edge_slice(_series_dir(source, cohort, 0, 1)))
    _cut_pixels(_edge_slice(_series_dir(source, cohort, 1, 3)), 0.3)
    store = tmp_path / "store"
    report = run_ingest(str(source), str(store), client=dask_client)
    assert report.reason_counts() == {"incomplete-series": 2, "truncated": 2}
    assert report.exit_status() is ExitStatus.PARTIAL
    catalog = read_catalog(StoreLocation.from_url(str(store)))
    stored = set(zip(catalog.study, catalog.series))
    held_back = {(o.study, o.series) for o in report.quarantined if o.reason == "incomplete-series"}
    assert {s for _, s in held_back} == {"post_1", "post_3"} and not held_back & stored
    assert len(stored) == 8
    text = next((store / "reports" / "ingest").iterdir()).read_text()
    assert "incomplete-series" in text and str(source) not in text


def test_header_cut_short_edge_slice_replaces_the_ignored_entry(tmp_path, source, cohort) -> None:
    """Cut inside the header (after the Series UID): no whole header, so the series is short and the classifier
    ignores it as another acquisition; it is still reported as incomplete, naming the file."""
    series_dir = _series_dir(source, cohort, 0, 2)
    victim = _edge_slice(series_dir)
    data = victim.read_bytes()
    at = data.index(b"\x20\x00\x32\x00DS")  # ImagePositionPatient, after the UIDs
    victim.write_bytes(data[:at + 12])
    plan = _plan(source, tmp_path)
    assert [o.where for o in _entries(plan, "truncated")] == [str(victim)]
    (incomplete,) = _entries(plan, "incomplete-series")
    assert str(victim) in incomplete.message
    assert not [o for o in plan.outcomes if o.outcome is Outcome.IGNORED and o.where == incomplete.where]


def test_other_objects_in_a_series_do_not_hold_it_back(tmp_path, source, cohort) -> None:
    """An image object without pixels sharing the series UID is rejected alone: no slice of the series is lost."""
    series_dir = _series_dir(source, cohort, 0, 1)
    ds = pydicom.dcmread(sorted(series_dir.iterdir())[0])
    del ds.PixelData
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    ds.save_as(series_dir / "extra")
    plan = _plan(source, tmp_path)
    assert [o.reason for o in plan.outcomes if o.outcome is Outcome.QUARANTINED] == ["no-pixel-data"]
    assert len(plan.jobs) == 10


def test_lost_file_of_a_multiphase_series_holds_back_only_its_phase(tmp_path) -> None:
    config = PhantomConfig(studies=1, seed=5, t2_fraction=0.0, multiphase_series=True)
    result = write_mri_study(tmp_path, 0, config, TransferSyntax.EXPLICIT_LE)
    series_dir = tmp_path / "dicom" / result.study["study_id"] / str(result.study["pre_series_number"])
    files = sorted(series_dir.iterdir())
    n_phases = int(result.study["n_post_phases"]) + 1
    assert len(files) == n_phases * int(result.study["n_slices"])
    times = {f: pydicom.dcmread(f, stop_before_pixels=True).get("TemporalPositionIdentifier") for f in files}
    victim = next(f for f in files if times[f] == 2)  # a file of the second phase (post_1)
    _cut_pixels(victim)
    plan = _plan(tmp_path / "dicom", tmp_path)
    (incomplete,) = _entries(plan, "incomplete-series")
    assert incomplete.series == "post_1" and str(victim) in incomplete.message
    assert sorted(j.series for j in plan.jobs) == sorted(
        ["pre"] + [f"post_{k}" for k in range(2, n_phases)])
