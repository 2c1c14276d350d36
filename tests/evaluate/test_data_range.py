"""The evaluation's data range: from the real set or --data-range, never the container; clipping recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import structural_similarity

from breastflow.cli import main
from breastflow.data.image_sets import ImageSet, InputError
from breastflow.metrics import names
from breastflow.evaluate.data_range import DataRange, check_clipping
from breastflow.evaluate.sets import evaluate_folders
from breastflow.evaluate.config import EvaluationConfig


def twelve_bit_pngs(tmp_path, n=4, size=32):
    """12-bit images (0..4095) saved as 16-bit PNGs, real and noisy fake."""
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4096, (n, size, size)).astype(np.uint16)
    real[:, 0, 0] = 4095
    fake = np.clip(real + rng.normal(0, 200, real.shape), 0, 4095).astype(np.uint16)
    for name, images in (("real", real), ("fake", fake)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img).save(tmp_path / name / f"s{i}.png")
    return real, fake


def test_twelve_bit_in_sixteen_bit_png_scored_against_real_range(tmp_path):
    real, fake = twelve_bit_pngs(tmp_path)
    res = evaluate_folders(tmp_path / "real", tmp_path / "fake", EvaluationConfig(metrics=(names.SSIM,), paired=True))
    assert res.values["data_range"] == 4095.0  # not 65535
    assert res.data_range.source == "real set" and res.data_range.real_max == 4095.0
    ref = np.mean([structural_similarity(f.astype(float), r.astype(float), data_range=4095.0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for r, f in zip(real, fake)])
    assert res.values[names.SSIM] == pytest.approx(ref, abs=1e-5)
    assert res.values[names.SSIM] < 0.99


def _set(images, source="s"):
    return ImageSet(source=source, names=tuple(f"i{k}" for k in range(len(images))), images=tuple(images))


def test_clipped_share_recorded_warned_and_refused():
    real = _set([np.array([[0.0, 50.0], [100.0, 100.0]])], "real")
    fake = _set([np.array([[0.0, 150.0], [-1.0, 90.0]])], "fake")
    base = DataRange(100.0, "--data-range", 0.0, 100.0)
    notes: list[str] = []
    resolved = check_clipping(base, {"real": real, "fake": fake}, (), EvaluationConfig(), notes)
    assert resolved.clipped_share == {"real": 0.0, "fake": 0.5}  # no windowing metric: recorded only
    assert not any("WARNING" in n for n in notes)
    with pytest.raises(InputError, match=r"50\.00% of the fake set.*--allow-clipping"):
        check_clipping(base, {"real": real, "fake": fake}, ("fid_img",), EvaluationConfig(), [])
    notes = []
    with pytest.warns(UserWarning, match="50.00% of the fake set"):
        check_clipping(base, {"real": real, "fake": fake}, ("fid_img",), EvaluationConfig(allow_clipping=True), notes)
    assert any(n.startswith("WARNING: 50.00% of the fake set") for n in notes)
    with pytest.warns(UserWarning):  # under the threshold: a warning, no error
        check_clipping(base, {"real": real, "fake": fake}, ("fid_img",), EvaluationConfig(max_clipped_share=0.6), [])


def test_evaluate_refuses_clipping_windowing_metric_and_records_share(tmp_path):
    twelve_bit_pngs(tmp_path)
    cfg = EvaluationConfig(metrics=(names.FID_IMG,), data_range=1000.0)
    with pytest.raises(InputError, match="outside \\[0, 1000\\] and are clipped by fid_img"):
        evaluate_folders(tmp_path / "real", tmp_path / "fake", cfg)
    res = evaluate_folders(tmp_path / "real", tmp_path / "fake",
                           EvaluationConfig(metrics=(names.MSE,), paired=True, data_range=1000.0))
    assert 0.5 < res.values["clipped_share_real"] < 1.0 and res.data_range.windowing_metrics == ()


def test_cli_prints_and_writes_range_and_refuses_clipping(tmp_path):
    twelve_bit_pngs(tmp_path)
    out = tmp_path / "m.json"
    args = ["evaluate", str(tmp_path / "real"), str(tmp_path / "fake")]
    r = CliRunner().invoke(main, [*args, "--paired", "--metrics", "mse", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "data range R = 4095 from real set" in r.output
    doc = json.loads(out.read_text())
    assert doc["data_range"]["source"] == "real set" and doc["data_range"]["value"] == 4095.0
    assert doc["values"]["clipped_share_fake"] == 0.0
    r = CliRunner().invoke(main, [*args, "--metrics", "fid_img", "--data-range", "1000"])
    assert r.exit_code == 1 and "--allow-clipping" in r.output
