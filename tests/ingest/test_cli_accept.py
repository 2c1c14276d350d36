"""``breastflow ingest --accept breast|any`` on phantom copies relabelled as brain MPRAGEs, and the terminal summary."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from breastflow.cli import main

pytestmark = pytest.mark.integration

_CONTRAST = ("ContrastBolusAgent", "ContrastBolusRoute", "ContrastBolusVolume", "ContrastBolusStartTime",
             "ContrastBolusIngredient")


def _make_brain(folder: Path) -> None:
    """Relabel a phantom study as a brain MPRAGE export (temporal positions kept, as Siemens XA/Philips do)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = pydicom.dcmread(path)
        ds.BodyPartExamined = "HEAD"
        ds.StudyDescription = "MR Schaedel"
        ds.SeriesDescription = ds.ProtocolName = "t1_mprage_sag"
        ds.ReceiveCoilName = "Head_32"
        for keyword in _CONTRAST:
            if keyword in ds:
                delattr(ds, keyword)
        assert "TemporalPositionIdentifier" in ds
        ds.save_as(path)


def _run(source: Path, store: Path, report: Path, accept: str):  # noqa: ANN202
    return CliRunner().invoke(main, ["ingest", str(source), str(store), "--threads", "--quiet", "--no-annotations",
                                     "--accept", accept, "--report", str(report)])


def _catalog(store: Path) -> list[dict]:
    return json.loads(CliRunner().invoke(main, ["catalog", str(store), "--json"]).output)


@pytest.fixture
def brain_and_breast(source: Path) -> tuple[Path, str]:
    """The landing copy with its first study relabelled as brain; returns (landing, brain folder name)."""
    brain = sorted(p for p in source.iterdir() if p.is_dir())[0]
    _make_brain(brain)
    return source, brain.name


def _brain_study(report: dict, brain: str) -> str:
    studies = {e["study"] for e in report["entries"] if f"/{brain}/" in e["where"]}
    assert len(studies) == 1
    return studies.pop()


def test_brain_series_are_not_stored_under_accept_breast(tmp_path, brain_and_breast):
    source, brain = brain_and_breast
    result = _run(source, tmp_path / "store", tmp_path / "report.json", "breast")
    assert result.exit_code == 0, result.output  # ignored is not a failure; the breast study landed
    report = json.loads((tmp_path / "report.json").read_text())
    brain_study = _brain_study(report, brain)
    rows = _catalog(tmp_path / "store")
    assert rows and brain_study not in {r["study"] for r in rows}
    assert all("body-part" in r["breast_evidence"] for r in rows)  # the phantom's breast study, with its evidence
    assert {"pre", "post_1"} <= {r["series"] for r in rows}
    # the terminal names each ignored series: outcome, reason code, pseudonymised study/series, one-line reason
    ignored = [line.strip() for line in result.output.splitlines() if line.strip().startswith("ignored ")]
    assert ignored and all(line.startswith(f"ignored [unrecognised-series] {brain_study}/unknown_") for line in ignored)
    assert all("BodyPartExamined HEAD names another body part" in line and "<path>" not in line for line in ignored)
    assert str(source) not in result.output and brain not in result.output


def test_brain_series_are_stored_by_timing_under_accept_any(tmp_path, brain_and_breast):
    source, brain = brain_and_breast
    result = _run(source, tmp_path / "store", tmp_path / "report.json", "any")
    assert result.exit_code == 0, result.output
    brain_study = _brain_study(json.loads((tmp_path / "report.json").read_text()), brain)
    brain_rows = [r for r in _catalog(tmp_path / "store") if r["study"] == brain_study]
    assert {"pre", "post_1"} <= {r["series"] for r in brain_rows}
    assert all("body-part" not in r["breast_evidence"] for r in brain_rows)
