"""End to end: a phantom cohort whose DCE phases are one series per study lands as pre, post_1..post_k."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from breastflow.cli import main
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs

pytestmark = pytest.mark.integration
SEED = 2  # studies 0..2: GE, Siemens, Philips


def _phantom_and_ingest(tmp_path, multiphase: bool) -> tuple[pd.DataFrame, StoreLocation, dict]:
    runner = CliRunner()
    out = tmp_path / ("multi" if multiphase else "separate")
    args = ["phantom", str(out), "-n", "3", "-s", str(SEED), "--t2-fraction", "0", "--no-progress"]
    made = runner.invoke(main, args + (["--multiphase-series"] if multiphase else []))
    assert made.exit_code == 0, made.output
    store = tmp_path / f"store-{out.name}"
    report_path = tmp_path / f"report-{out.name}.json"
    result = runner.invoke(main, ["ingest", str(out / "dicom"), str(store), "--threads", "--quiet",
                                  "--report", str(report_path)])
    assert result.exit_code == 0, result.output
    loc = StoreLocation.from_url(str(store))
    cohort = pd.read_csv(out / "cohort.csv")
    return cohort, loc, json.loads(report_path.read_text())


def test_multiphase_series_round_trips_as_one_series_per_phase(tmp_path) -> None:
    cohort, multi, report = _phantom_and_ingest(tmp_path, True)
    assert cohort.multiphase_series.all()
    assert (cohort.pre_series_number.astype(str) == cohort.post_series_numbers.str.split(";").str[0]).all()
    assert set(cohort.vendor) == {"ge", "siemens", "philips"}
    _, separate, _ = _phantom_and_ingest(tmp_path, False)
    catalog = read_catalog(multi).sort_values(["study", "series"]).reset_index(drop=True)
    reference = read_catalog(separate).sort_values(["study", "series"]).reset_index(drop=True)
    assert report["new"] == len(catalog) == int((cohort.n_post_phases + 1).sum())
    # the same studies and series names as the cohort written one series per phase (same seed)
    assert list(zip(catalog.study, catalog.series)) == list(zip(reference.study, reference.series))
    for study, rows in catalog.groupby("study"):
        names = sorted(rows.series, key=lambda n: (n != "pre", n))
        n_post = len(names) - 1
        assert names == ["pre"] + [f"post_{k}" for k in range(1, n_post + 1)]
        offsets = []
        sources = set()
        for name in names:
            stored = open_series_array(multi, study, name)[:]
            np.testing.assert_array_equal(stored, open_series_array(separate, study, name)[:], err_msg=name)
            attrs = series_attrs(multi, study, name)["breastflow"]
            offsets.append(attrs["phase_offset_s"])
            sources.add(attrs["provenance"]["source_series"])
            assert attrs["phase_offset_s"] == pytest.approx(
                series_attrs(separate, study, name)["breastflow"]["phase_offset_s"])
        assert offsets[0] == 0.0 and all(b > a > -1 for a, b in zip(offsets, offsets[1:])) and offsets[1] > 0
        assert len(sources) == len(names)  # each phase has its own source pseudonym


def test_multiphase_reingest_is_skipped(tmp_path) -> None:
    """Derived phase keys and fingerprints are stable: a second run commits nothing new."""
    runner = CliRunner()
    out = tmp_path / "c"
    made = runner.invoke(main, ["phantom", str(out), "-n", "1", "-s", str(SEED), "--t2-fraction", "0",
                                "--no-progress", "--multiphase-series"])
    assert made.exit_code == 0, made.output
    store, reports = tmp_path / "store", []
    for run in range(2):
        path = tmp_path / f"r{run}.json"
        result = runner.invoke(main, ["ingest", str(out / "dicom"), str(store), "--threads", "--quiet",
                                      "--report", str(path)])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(path.read_text()))
    assert reports[0]["new"] >= 2 and reports[1]["new"] == 0 and reports[1]["skipped"] == reports[0]["new"]
