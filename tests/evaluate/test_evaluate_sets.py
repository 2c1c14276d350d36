"""End-to-end evaluation of PNG / .npy folders, checked against direct library calls."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import mean_squared_error, structural_similarity

from breastflow.data.image_sets import InputError, load_image_folder
from breastflow.metrics import names
from breastflow.evaluate.sets import evaluate_folders
from breastflow.evaluate.config import EvaluationConfig
from breastflow.metrics.moments import compare_moments
from breastflow.metrics.nn_accuracy import nn_accuracy
from breastflow.evaluate.report import write_report
from breastflow.metrics.swd import SWDConfig, sliced_wasserstein_distance
from breastflow.registry import RegistryError


def phantom_slices(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(10, size - 10, 2)
        blob = 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(20, 60))
        out.append(np.clip(40 + blob + rng.normal(0, 8, (size, size)), 0, 255))
    return np.asarray(out)


def write_png(folder, images, bits=8, prefix="slice"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        arr = np.round(img).astype(np.uint8 if bits == 8 else np.uint16)
        Image.fromarray(arr).save(folder / f"{prefix}_{i:03d}.png")


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    real = phantom_slices(rng, 8)
    fake = np.clip(real + rng.normal(0, 10, real.shape), 0, 255)
    write_png(tmp_path / "real", real)
    write_png(tmp_path / "fake", fake)
    return tmp_path / "real", tmp_path / "fake"


def test_paired_png_end_to_end_matches_direct_calls(folders, tmp_path):
    real_dir, fake_dir = folders
    cfg = EvaluationConfig(metrics=("mse", "ssim", "moments", "swd", "nn_accuracy"), paired=True)
    res = evaluate_folders(real_dir, fake_dir, cfg)
    real = load_image_folder(real_dir).stack().astype(np.float64)
    fake = load_image_folder(fake_dir).stack().astype(np.float64)
    assert res.values["data_range"] == real.max()  # the real set's range, not the uint8 container's 255
    assert res.data_range.source == "real set" and res.values["clipped_share_real"] == 0.0
    assert res.values[names.MSE] == pytest.approx(np.mean([mean_squared_error(r, f) for r, f in zip(real, fake)]), rel=1e-9)
    ssim = [structural_similarity(r, f, data_range=real.max(), gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for r, f in zip(real, fake)]
    assert res.values[names.SSIM] == pytest.approx(np.mean(ssim), abs=1e-6)
    assert res.values[names.MOMENTS_W1] == pytest.approx(compare_moments(real, fake).to_dict()[names.MOMENTS_W1])
    assert res.values[names.SWD] == pytest.approx(sliced_wasserstein_distance(real, fake, SWDConfig(seed=0)).mean)
    assert res.values[names.NN_ACCURACY] == pytest.approx(nn_accuracy(real, fake).overall)

    files = write_report(res, tmp_path / "report")
    doc = json.loads(files.json.read_text())
    assert doc["values"][names.MSE] == pytest.approx(res.values[names.MSE])
    assert doc["data_range"]["source"] == "real set" and doc["data_range"]["value"] == real.max()
    assert {p.name for p in files.plots} == {"moments.png", "swd.png", "paired.png"}
    assert "moments.png" in files.markdown.read_text() and "<table" in files.html.read_text()


def test_sixteen_bit_png_and_npy_stacks(tmp_path):
    rng = np.random.default_rng(1)
    real = phantom_slices(rng, 6) * 200
    write_png(tmp_path / "real", real, bits=16)
    (tmp_path / "fake").mkdir()
    np.save(tmp_path / "fake" / "a.npy", np.round(real[:4]).astype(np.uint16))  # a stack of 4
    np.save(tmp_path / "fake" / "b.npy", np.round(real[4]).astype(np.uint16))  # one 2-D image
    np.save(tmp_path / "fake" / "c.npy", np.round(real[5]).astype(np.uint16))
    r, f = load_image_folder(tmp_path / "real"), load_image_folder(tmp_path / "fake")
    assert r.images[0].dtype == np.uint16 and r.images[0].max() > 255
    assert f.names == ("a.npy[0]", "a.npy[1]", "a.npy[2]", "a.npy[3]", "b.npy", "c.npy")
    res = evaluate_folders(tmp_path / "real", tmp_path / "fake", EvaluationConfig(metrics=("moments", "nn_accuracy")))
    assert res.values["data_range"] == np.round(real).max() < 65535  # never the uint16 container's range
    assert res.values[names.MOMENTS_W1] == pytest.approx(0.0, abs=1e-12)  # identical pixel values


def test_float_npy_data_range_from_real_set_or_option(tmp_path):
    images = np.random.default_rng(2).random((3, 16, 16))
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "x.npy", images)
    cfg = EvaluationConfig(metrics=("mse",), paired=True)
    res = evaluate_folders(tmp_path / "real", tmp_path / "fake", cfg)
    assert res.values["data_range"] == images.max() and res.data_range.source == "real set"
    res = evaluate_folders(tmp_path / "real", tmp_path / "fake", cfg.model_copy(update={"data_range": 1.0}))
    assert res.values[names.MSE] == 0.0 and res.data_range.source == "--data-range"
    assert any("from --data-range" in note for note in res.notes)
    for name in ("real", "fake"):
        np.save(tmp_path / name / "x.npy", np.zeros((3, 16, 16)))
    with pytest.raises(InputError, match="all zero.*pass --data-range"):
        evaluate_folders(tmp_path / "real", tmp_path / "fake", cfg)


def test_bad_inputs_name_the_file(folders, tmp_path):
    real_dir, fake_dir = folders
    (fake_dir / "slice_000.png").rename(fake_dir / "slice_999.png")
    with pytest.raises(InputError, match="slice_000.png missing"):
        evaluate_folders(real_dir, fake_dir, EvaluationConfig(metrics=("mse",), paired=True))
    with pytest.raises(InputError, match="pass --paired"):
        evaluate_folders(real_dir, fake_dir, EvaluationConfig(metrics=("mse",)))
    with pytest.raises(RegistryError, match="did you mean 'ssim'"):
        evaluate_folders(real_dir, fake_dir, EvaluationConfig(metrics=("ssimm",), paired=False))

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        load_image_folder(tmp_path / "empty", "real")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="broken.png: unreadable PNG"):
        load_image_folder(bad)
    (bad / "broken.png").unlink()
    np.save(bad / "nan.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(InputError, match="nan.npy: holds NaN"):
        load_image_folder(bad)
    (bad / "nan.npy").unlink()
    (bad / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="notes.txt: not a .png/.npy image"):
        load_image_folder(bad)
    (bad / "notes.txt").unlink()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(bad / "rgb.png")
    with pytest.raises(InputError, match="rgb.png: PNG mode 'RGB'"):
        load_image_folder(bad)


def test_sets_too_small_and_size_mismatch(tmp_path):
    rng = np.random.default_rng(3)
    write_png(tmp_path / "one", phantom_slices(rng, 1))
    write_png(tmp_path / "many", phantom_slices(rng, 5))
    with pytest.raises(InputError, match=r"fid_img needs at least 2 real images \(a covariance estimate\).* has 1"):
        evaluate_folders(tmp_path / "one", tmp_path / "many", EvaluationConfig(metrics=("fid_img",)))
    with pytest.raises(InputError, match="precision_recall needs at least 4"):
        evaluate_folders(tmp_path / "many", tmp_path / "one", EvaluationConfig(metrics=("precision_recall",)))
    write_png(tmp_path / "big", phantom_slices(rng, 3, size=48))
    with pytest.raises(InputError, match="differ in size"):
        evaluate_folders(tmp_path / "many", tmp_path / "big", EvaluationConfig(metrics=("swd",)))


@pytest.mark.slow
def test_fid_img_on_small_pngs(tmp_path):
    """FID_Img through the folder path equals frechet_distance on the same arrays (~1 min on 2 CPU cores)."""
    from breastflow.metrics.frechet import frechet_distance

    rng = np.random.default_rng(4)
    real, fake = phantom_slices(rng, 10, 64), phantom_slices(rng, 10, 64)
    write_png(tmp_path / "r", real)
    write_png(tmp_path / "f", fake)
    res = evaluate_folders(tmp_path / "r", tmp_path / "f", EvaluationConfig(metrics=("fid_img",)))
    ref = frechet_distance(np.round(real).astype(np.uint8), np.round(fake).astype(np.uint8), data_range=255.0)
    assert res.values[names.FID_IMG] == pytest.approx(ref, rel=1e-9)


def test_thread_count_is_applied_then_restored_and_changes_no_value(folders):
    import torch

    real_dir, fake_dir = folders
    before = torch.get_num_threads()
    config = EvaluationConfig(metrics=(names.SSIM, names.MSE), paired=True)
    default = evaluate_folders(real_dir, fake_dir, config).values
    one = evaluate_folders(real_dir, fake_dir, config.model_copy(update={"num_threads": 1})).values
    assert torch.get_num_threads() == before
    assert one[names.SSIM] == pytest.approx(default[names.SSIM], abs=1e-6) and one[names.MSE] == default[names.MSE]
    with pytest.raises(ValueError):
        EvaluationConfig(num_threads=0)
