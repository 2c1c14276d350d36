"""End-to-end ingest on a real Dask LocalCluster into a local store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from ingest_helpers import assert_no_phi_in, read_series_with_pydicom

from breastflow.deid.pseudonym import load_key, pseudonymise
from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs

pytestmark = pytest.mark.integration


def _store_files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "reports" not in p.parts}


def assert_no_phi(root: Path, phi_values: list[str]) -> None:
    """Every file under a local store is free of every PHI value."""
    assert_no_phi_in({str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()},
                     phi_values)


def test_ingest_matches_pydicom_voxel_for_voxel_and_holds_no_phi(tmp_path, source, cohort, dask_client):
    store = tmp_path / "store"
    report = run_ingest(str(source), str(store), client=dask_client)
    assert report.exit_status() is ExitStatus.SUCCESS
    loc = StoreLocation.from_url(str(store))
    catalog = read_catalog(loc)
    expected_series = sum(1 + int(row["n_post_phases"]) for row in cohort.studies)
    assert len(report.new) == len(catalog) == expected_series
    key = load_key()
    for row in cohort.studies:
        study = pseudonymise(row["study_instance_uid"], "study", key)
        rows = catalog[catalog.study == study]
        assert set(rows.series) == {"pre"} | {f"post_{k}" for k in range(1, int(row["n_post_phases"]) + 1)}
        assert rows.vendor.iloc[0] == row["manufacturer"]
        for name in rows.series:
            number = series_attrs(loc, study, name)["breastflow"]["dicom"]["series_number"]
            reference = read_series_with_pydicom(source / row["study_id"] / str(number))
            stored = open_series_array(loc, study, name)[:]
            assert stored.dtype == reference.dtype
            np.testing.assert_array_equal(stored, reference)
        offsets = rows.sort_values("phase_index").phase_offset_s.tolist()
        assert offsets[0] == 0.0 and all(b > a for a, b in zip(offsets, offsets[1:], strict=False))
    assert_no_phi(store, cohort.phi_values)


def test_second_run_writes_nothing_and_new_study_is_incremental(tmp_path, source, extra_study, dask_client):
    store = tmp_path / "store"
    first = run_ingest(str(source), str(store), client=dask_client)
    before = _store_files(store)
    again = run_ingest(str(source), str(store), client=dask_client)
    assert (len(again.new), len(again.skipped)) == (0, len(first.new))
    assert again.exit_status() is ExitStatus.SUCCESS
    after = _store_files(store)
    catalog_file = "catalog/catalog.parquet"
    assert {k: v for k, v in after.items() if k != catalog_file} == \
        {k: v for k, v in before.items() if k != catalog_file}
    shutil.copytree(extra_study.dicom, source, dirs_exist_ok=True)
    third = run_ingest(str(source), str(store), client=dask_client)
    assert len(third.skipped) == len(first.new)
    new_studies = {o.study for o in third.new}
    assert len(new_studies) == 1 and not new_studies & {o.study for o in first.new}
    assert len(read_catalog(StoreLocation.from_url(str(store)))) == len(first.new) + len(third.new)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2000])


def test_bad_input_is_quarantined_with_reasons_and_the_rest_lands(tmp_path, source, cohort, dask_client):
    good, bad = (source / row["study_id"] for row in cohort.studies)
    posts = cohort.studies[0]["post_series_numbers"].split(";")
    assert len(posts) >= 2
    (source / "notes.txt").write_text("not a dicom file")
    _truncate(sorted((good / posts[0]).iterdir())[3])  # that phase loses a slice: file and phase quarantined
    # duplicate slice position inside another phase (same slice count, so it stays a phase)
    files = sorted((good / posts[1]).iterdir())
    twin = pydicom.dcmread(files[5])
    ds = pydicom.dcmread(files[6])
    ds.ImagePositionPatient = twin.ImagePositionPatient
    ds.save_as(files[6])
    shutil.rmtree(bad / str(cohort.studies[1]["pre_series_number"]))  # study without pre-contrast
    report = run_ingest(str(source), str(tmp_path / "store"), client=dask_client)
    reasons = report.reason_counts()
    assert reasons == {"not-dicom": 1, "truncated": 1, "incomplete-series": 1, "duplicate-slice": 1,
                       "no-pre-contrast": 1}, reasons
    assert report.exit_status() is ExitStatus.PARTIAL
    # pre + the intact phases of the first study landed; the short phase is recorded, not guessed
    assert len(report.new) == 1 + len(posts) - 2
    assert report.ignored == []  # the short phase is reported as incomplete, not as an unknown series
    (incomplete,) = [o for o in report.quarantined if o.reason == "incomplete-series"]
    assert incomplete.series == "post_1" and "truncated" in incomplete.message
    catalog = read_catalog(StoreLocation.from_url(str(tmp_path / "store")))
    assert len(catalog) == len(report.new) and catalog.study.nunique() == 1
    where = {o.reason: o.where for o in report.quarantined}
    assert where["not-dicom"].endswith("notes.txt")
    stored = tmp_path / "store" / "reports" / "ingest"
    text = next(stored.iterdir()).read_text()
    assert "no-pre-contrast" in text and str(source) not in text


def test_empty_source_is_a_failure(tmp_path, dask_client):
    (tmp_path / "empty").mkdir()
    report = run_ingest(str(tmp_path / "empty"), str(tmp_path / "store"), client=dask_client)
    assert report.exit_status() is ExitStatus.FAILURE


def test_missing_key_is_a_clear_error(tmp_path, source, monkeypatch):
    monkeypatch.delenv("BREASTFLOW_PSEUDONYM_KEY")
    with pytest.raises(ValueError, match="BREASTFLOW_PSEUDONYM_KEY is not set"):
        run_ingest(str(source), str(tmp_path / "store"))
    assert not os.path.exists(tmp_path / "store" / "catalog")


def test_changing_the_split_seed_is_refused(tmp_path, source, dask_client):
    from breastflow.ingest.config import IngestConfig
    from breastflow.store.splits import SplitConfig

    run_ingest(str(source), str(tmp_path / "store"), client=dask_client)
    with pytest.raises(ValueError, match="split with seed 0"):
        run_ingest(str(source), str(tmp_path / "store"), IngestConfig(splits=SplitConfig(seed=4)), client=dask_client)
