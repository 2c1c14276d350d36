"""One bad study never stops the batch: studies without PatientID, or whose planning raises, are quarantined."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from ingest_helpers import assert_no_phi_in

from breastflow.cli import main
from breastflow.dicom.errors import Reason
from breastflow.ingest import plan as plan_module

pytestmark = pytest.mark.integration


def _study_folders(landing: Path) -> list[Path]:
    return sorted(p for p in landing.iterdir() if p.is_dir())


def _edit_study(folder: Path, edit) -> None:  # noqa: ANN001 - a callable taking a Dataset
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)


def _blank_patient_id(ds: pydicom.Dataset) -> None:
    ds.PatientID = ""


def _delete_patient_id(ds: pydicom.Dataset) -> None:
    del ds.PatientID


@pytest.fixture
def three_studies(tmp_path, cohort, extra_study) -> Path:
    """Landing copy of three phantom studies (two from ``cohort``, one from ``extra_study``)."""
    landing = tmp_path / "landing"
    shutil.copytree(cohort.dicom, landing)
    for folder in _study_folders(extra_study.dicom):
        shutil.copytree(folder, landing / folder.name)
    assert len(_study_folders(landing)) == 3
    return landing


def _ingest(landing: Path, store: Path, report: Path):  # noqa: ANN202
    return CliRunner().invoke(main, ["ingest", str(landing), str(store), "--threads", "--quiet",
                                     "--no-annotations", "--report", str(report)])


def test_studies_without_patient_id_are_quarantined_and_the_rest_ingested(tmp_path, three_studies, cohort):
    first, second, valid = _study_folders(three_studies)
    _edit_study(first, _blank_patient_id)
    _edit_study(second, _delete_patient_id)
    store, report_path = tmp_path / "store", tmp_path / "report.json"
    result = _ingest(three_studies, store, report_path)
    assert result.exit_code == 3, result.output
    report = json.loads(report_path.read_text())
    missing = [e for e in report["entries"] if e["reason"] == Reason.MISSING_PATIENT_ID.value]
    assert len(missing) == 2
    assert {e["outcome"] for e in missing} == {"quarantined"}
    assert all(e["study"].startswith("stu-") and e["study"] in e["message"] for e in missing)
    assert {Path(e["where"].split("first ")[-1].split()[0]).parent.parent.name for e in missing} == {
        first.name, second.name}  # named by the first file's locator (operator report only)
    assert report["new"] > 0
    catalog = json.loads(CliRunner().invoke(main, ["catalog", str(store), "--json"]).output)
    stored_studies = {row["study"] for row in catalog}
    assert len(stored_studies) == 1 and not stored_studies & {e["study"] for e in missing}
    # terminal: reason code and a one-line reason per quarantined study, named by pseudonym, no paths
    lines = [line for line in result.output.splitlines() if "[missing-patient-id]" in line]
    assert len(lines) == 2 and all("stu-" in line and "no PatientID" in line for line in lines)
    assert str(three_studies) not in result.output
    # the store's run report names the quarantined studies without PHI
    reports = {str(p): p.read_bytes() for p in store.rglob("*.json") if "report" in str(p)}
    assert_no_phi_in(reports, cohort.phi_values)


def test_any_planning_error_quarantines_only_that_study(tmp_path, source, monkeypatch):
    real = plan_module.classify_study
    broken = sorted(p.name for p in source.iterdir() if p.is_dir())[0]

    def classify_or_fail(study, accept):  # noqa: ANN001, ANN202
        if broken in study.series[0].headers[0].path:
            raise RuntimeError(f"simulated bug while classifying {study.study_uid} of {study.patient_id}")
        return real(study, accept)

    monkeypatch.setattr(plan_module, "classify_study", classify_or_fail)
    store, report_path = tmp_path / "store", tmp_path / "report.json"
    result = _ingest(source, store, report_path)
    assert result.exit_code == 3, result.output
    report = json.loads(report_path.read_text())
    (entry,) = [e for e in report["entries"] if e["outcome"] == "quarantined"]
    assert entry["reason"] == Reason.STUDY_PLANNING_ERROR.value
    assert "RuntimeError: simulated bug while classifying <identifier> of <identifier>" in entry["message"]
    assert report["new"] > 0
    assert "[study-planning-error]" in result.output
