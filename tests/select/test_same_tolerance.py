"""SAMe: a metric is constant within a relative tolerance, and the tolerance is reported."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from breastflow.cli import main
from breastflow.metrics import names
from breastflow.select.same import CONSTANT_ATOL, CONSTANT_RTOL, same_score

# mse differs by one rounding step only; fid_img alone should decide (a wins).
TABLE = pd.DataFrame({names.FID_IMG: [10.0, 11.0], names.MSE: [0.30000000000000004, 0.3]}, index=["a", "b"])


def test_rounding_step_counts_as_constant():
    r = same_score(TABLE, metrics=[names.FID_IMG, names.MSE])
    assert r.constant_metrics == (names.MSE,)
    assert (r.scaled[names.MSE] == 0.0).all()
    assert r.choice == "a" and r.same["a"] == 0.0 and r.same["b"] == pytest.approx(0.5)
    assert r.to_dict()["constant_tolerance"] == {"rtol": CONSTANT_RTOL, "atol": CONSTANT_ATOL}


def test_tolerance_is_a_parameter():
    exact = same_score(TABLE, metrics=[names.FID_IMG, names.MSE], constant_rtol=0.0, constant_atol=0.0)
    assert exact.constant_metrics == () and exact.scaled.loc["a", names.MSE] == 1.0
    wide = same_score(TABLE, metrics=[names.FID_IMG, names.MSE], constant_rtol=0.2)
    assert wide.constant_metrics == (names.FID_IMG, names.MSE) and wide.constant_rtol == 0.2
    with pytest.raises(ValueError, match="must be >= 0"):
        same_score(TABLE, metrics=[names.FID_IMG], constant_rtol=-1.0)


def test_cli_reports_tolerance(tmp_path):
    path = tmp_path / "t.csv"
    TABLE.rename_axis("checkpoint").to_csv(path)
    r = CliRunner().invoke(main, ["same", str(path), "--metrics", "fid_img,mse", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["constant_metrics"] == [names.MSE] and doc["constant_tolerance"]["rtol"] == CONSTANT_RTOL
    r = CliRunner().invoke(main, ["same", str(path), "--metrics", "fid_img,mse", "--constant-rtol", "0",
                                  "--constant-atol", "0", "--json"])
    assert json.loads(r.output)["constant_tolerance"] == {"rtol": 0.0, "atol": 0.0}
    r = CliRunner().invoke(main, ["same", str(path), "--metrics", "fid_img,mse"])
    assert "rtol 1e-09" in r.output and "Choice: a" in r.output
