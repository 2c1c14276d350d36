import json

import pytest
from click.testing import CliRunner

from breastflow.cli import main

pytestmark = pytest.mark.integration


def test_cli_ingest_then_catalog_json(tmp_path, source):
    runner = CliRunner()
    store = str(tmp_path / "store")
    result = runner.invoke(main, ["ingest", str(source), store, "--threads", "--workers", "2", "--quiet",
                                  "--report", str(tmp_path / "report.json")])
    assert result.exit_code == 0, result.output
    assert ", skipped 0, quarantined 0, failed 0" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_status"] == 0 and report["new"] > 0
    listing = runner.invoke(main, ["catalog", store, "--json"])
    assert listing.exit_code == 0
    rows = json.loads(listing.output)
    assert len(rows) == report["new"]
    assert {"study", "series", "split", "phases_present"} <= set(rows[0])
    table = runner.invoke(main, ["catalog", store])
    assert "studies" in table.output and "pre" in table.output


def test_cli_partial_exit_status_is_3(tmp_path, source):
    (source / "junk.bin").write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(main, ["ingest", str(source), str(tmp_path / "s"), "--threads", "--quiet"])
    assert result.exit_code == 3, result.output
    assert "[not-dicom]" in result.output
