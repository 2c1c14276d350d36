"""`breastflow same` and `breastflow evaluate` through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from breastflow.cli import main

GOOD = """checkpoint,fid_img,fid_rad,ssim,mse,mae
ep10,15.047,0.108,0.701,37.803,93.895
ep30,17.308,0.081,0.699,38.334,88.733
ep50,16.412,0.089,0.696,38.045,101.696
ep100,18.778,0.219,0.669,42.320,113.144
"""


@pytest.fixture
def table(tmp_path):
    p = tmp_path / "table.csv"
    p.write_text(GOOD)
    return p


def test_same_prints_scaled_table_and_choice(table):
    r = CliRunner().invoke(main, ["same", str(table)])
    assert r.exit_code == 0, r.output
    assert "Scaled (0 = best candidate" in r.output
    # paper 003 Table 1 rows alone (4 of 17 checkpoints): ep10 wins here
    assert r.output.strip().splitlines()[-1].startswith("Choice: ep10 (SAMe ")


def test_same_json_and_options(table):
    r = CliRunner().invoke(main, ["same", str(table), "--metrics", "fid_rad,mae", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["choice"] == "ep30"  # best fid_rad and best mae
    assert doc["same"]["ep30"] == 0.0
    assert doc["raw"]["ep100"]["mae"] == pytest.approx(113.144)
    r = CliRunner().invoke(main, ["same", str(table), "--metrics", "fid_img,mae", "--weights", "1,0", "--json"])
    assert json.loads(r.output)["choice"] == "ep10"
    r = CliRunner().invoke(main, ["same", str(table), "--metrics", "fid_img,mae", "--weights", "mae=3", "--json"])
    assert json.loads(r.output)["weights"]["mae"] == pytest.approx(0.75)


@pytest.mark.parametrize("content, args, message", [
    (GOOD.replace("fid_rad", "fid_rda"), [], "column(s) ['fid_rad'] missing"),
    (GOOD.replace("0.081", ""), [], "'fid_rad' has missing, non-numeric or infinite values for candidate(s) ['ep30']"),
    (GOOD, ["--weights", "1,-1,1,1,1"], "weight of metric 'fid_rad'"),
    (GOOD, ["--weights", "1,x"], "weights must be numbers"),
    (GOOD, ["--metrics", "fid_img,foo"], "unknown metric name(s) ['foo']"),
    ("", [], "not a readable CSV"),
])
def test_same_bad_tables(tmp_path, content, args, message):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    r = CliRunner().invoke(main, ["same", str(p), *args])
    assert r.exit_code != 0
    assert message in r.output


def test_evaluate_cli_writes_json_and_report(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(tmp_path / name / f"s{i}.png")
    out = tmp_path / "m.json"
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "real"), str(tmp_path / "fake"), "--paired",
                                  "--metrics", "mse,psnr,moments", "--json", str(out), "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["values"]["mse"] > 0 and doc["config"]["paired"] is True
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "moments.png").is_file()
    assert "psnr" in r.output

    (tmp_path / "fake" / "s4.png").unlink()
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "real"), str(tmp_path / "fake"), "--paired", "--metrics", "mse"])
    assert r.exit_code == 1 and "s4.png missing" in r.output
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "real"), str(tmp_path / "fake"), "--metrics", "fid_imgg"])
    assert r.exit_code == 1 and "did you mean 'fid_img'" in r.output
