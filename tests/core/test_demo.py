"""The main job end to end: phantom -> store -> baseline metrics (model step skipped; trained in test_demo_model.py)."""

import os
import shutil
import stat
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest

from breastflow.deid.pseudonym import KEY_ENV_VAR
from breastflow.demo import POST1, PRE, kinetics_check, run_demo
from breastflow.demo_training import DemoTraining
from breastflow.demo_model import beats_both_baselines, local_ray
from breastflow.ingest.pseudonyms import Pseudonymiser


def _dicom_volume(folder):
    slices = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices])


@pytest.mark.integration
def test_demo_runs_end_to_end_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV_VAR, "k" * 64)  # fixed key: pseudonyms, hence splits, are deterministic
    first = run_demo(tmp_path, studies=3, seed=5, workers=1, training=DemoTraining().with_total_epochs(0))
    assert first.model is None and first.model_skipped == "train epochs 0"
    assert {"phantom", "ingest", "baselines", "kinetics"} <= set(first.timings) and "train" not in first.timings
    cohort = pd.read_csv(first.cohort_dir / "cohort.csv")
    n_series = int((cohort["n_post_phases"] + 1 + cohort["has_t2"].astype(int)).sum())
    assert first.ingest_summary["new"] == n_series
    assert first.ingest_summary["quarantined"] == first.ingest_summary["failed"] == 0
    assert not (tmp_path / "pseudonym.key").exists()

    # The identity baseline's MSE equals one computed straight from the DICOM files.
    assert list(first.baselines.index) == ["identity", "linear"]
    key = Pseudonymiser.from_env()
    evaluated = cohort[cohort["study_instance_uid"].map(key.study).isin(first.eval_studies)]
    assert len(evaluated) == len(first.eval_studies) > 0
    expected = []
    for row in evaluated.itertuples():
        pre = _dicom_volume(first.cohort_dir / row.dicom_dir / str(row.pre_series_number))
        post = _dicom_volume(first.cohort_dir / row.dicom_dir / str(row.post_series_numbers).split(";")[0])
        scale = np.percentile(pre, 99)
        expected.append(((pre / scale - post / scale) ** 2).mean(axis=(1, 2)))
    assert first.baselines.loc["identity", "mse"] == pytest.approx(np.concatenate(expected).mean(), rel=1e-9)
    assert first.same_choice in {"identity", "linear"}

    # Kinetics measured on the stored phases reproduce the designed curve types.
    lesions = pd.read_csv(first.cohort_dir / "lesions.csv")
    multi_phase = set(cohort.loc[cohort["n_post_phases"] >= 2, "study_id"])
    assert len(first.kinetics) == int(lesions["study_id"].isin(multi_phase).sum()) > 0
    assert (first.kinetics["designed"] == first.kinetics["measured"]).all()
    assert (first.kinetics["region"] == "mask").all()  # the lesion ROI from the stored mask, not the whole box
    unmasked = tmp_path / "unmasked"
    shutil.copytree(first.store, unmasked)
    for masks in unmasked.glob("studies/*/masks"):
        shutil.rmtree(masks)
    boxes_only = kinetics_check(str(unmasked), first.catalog)
    assert (boxes_only["region"] == "box").all() and len(boxes_only) == len(first.kinetics)
    assert sorted(first.kinetics["designed"]) == sorted(lesions.loc[lesions["study_id"].isin(multi_phase), "curve_type"])

    again = run_demo(tmp_path, studies=3, seed=5, workers=1, training=DemoTraining(epochs=0, decay_epochs=0))
    assert again.ingest_summary["new"] == 0
    assert again.ingest_summary["skipped"] == n_series
    pd.testing.assert_frame_equal(again.baselines, first.baselines)
    assert {PRE, POST1} <= set(again.catalog["series"])


def test_demo_refuses_a_single_study(tmp_path):
    with pytest.raises(ValueError, match="at least 2 studies"):
        run_demo(tmp_path, studies=1)


def test_demo_key_file_is_private_stable_and_scoped(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    from breastflow.demo import demo_key

    with demo_key(tmp_path) as from_file:
        assert from_file
        first_key = os.environ[KEY_ENV_VAR]
    key_file = tmp_path / "pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert KEY_ENV_VAR not in os.environ  # does not leak into the caller's environment
    with demo_key(tmp_path):
        assert os.environ[KEY_ENV_VAR] == first_key == key_file.read_text()
    assert len(bytes.fromhex(first_key)) == 32


def test_baselines_read_through_the_rescale(tmp_path, monkeypatch):
    """load_pairs applies each series' rescale slope/intercept before the per-case scale."""
    from breastflow.demo import load_pairs, per_case_scale
    from breastflow.generate.compare import read_physical
    from breastflow.store import zarr_io
    from breastflow.store.fs import StoreLocation

    monkeypatch.setenv(KEY_ENV_VAR, "k" * 64)
    result = run_demo(tmp_path, studies=2, seed=5, workers=1, training=DemoTraining(epochs=0, decay_epochs=0))
    store, study = str(result.store), min(result.catalog["study"].unique())
    (pre, post), = load_pairs(store, result.catalog, [study])
    stored = zarr_io.series_attrs

    def rescaled(loc, study_, series):  # post_1 stored with slope 2 and intercept 100 on top of its own
        attrs = stored(loc, study_, series)
        if series != POST1:
            return attrs
        mine = dict(attrs.get("breastflow", {}))
        slope, intercept = float(mine.get("rescale_slope") or 1.0), float(mine.get("rescale_intercept") or 0.0)
        return {**attrs, "breastflow": {**mine, "rescale_slope": 2 * slope, "rescale_intercept": 2 * intercept + 100}}

    monkeypatch.setattr(zarr_io, "series_attrs", rescaled)
    (pre_again, moved), = load_pairs(store, result.catalog, [study])
    unit = per_case_scale(read_physical(StoreLocation.from_url(store), study, PRE))
    np.testing.assert_array_equal(pre_again, pre)
    # physical post_1 is now 2 * before + 100; both divided by the study's unit (pre's 99th percentile)
    np.testing.assert_allclose(moved, 2 * post + 100 / unit, rtol=1e-12)


def test_train_epochs_keep_the_decay_share():
    base = DemoTraining(epochs=20, decay_epochs=8)
    assert (base.with_total_epochs(7).epochs, base.with_total_epochs(7).decay_epochs) == (5, 2)
    assert base.with_total_epochs(0).total_epochs == 0
    assert base.with_total_epochs(28) == base
    with pytest.raises(ValueError, match=">= 0"):
        base.with_total_epochs(-1)


def test_settings_build_a_valid_run_that_records_the_choices(tmp_path):
    from breastflow.train.settings import build_train_run

    training = DemoTraining()
    run = build_train_run(training.model, str(tmp_path), overrides=training.overrides())
    options = run.model_options
    assert options["perceptual"] == "off" and options["lambda_l1"] == training.lambda_l1
    assert (options["ngf"], options["ndf"], options["n_downsample_global"], options["n_blocks_global"]) == (16, 16, 1, 6)
    assert run.total_epochs == training.total_epochs > 0 and run.checkpoint_every == training.checkpoint_every
    assert run.dataset_spec["targets"] == [POST1] and run.dataset_spec["image_size"] == training.image_size
    assert (run.batch_size, run.workers, run.gpu) == (training.batch_size, training.workers, training.gpu)


@pytest.mark.parametrize(("model", "expected"), [
    # mae_lesion, mae, psnr, ssim
    ((0.3, 0.04, 28.0, 0.95), {"mae_lesion": True, "mae": True, "psnr": True, "ssim": True}),
    ((0.4, 0.05, 27.0, 0.92), {"mae_lesion": False, "mae": False, "psnr": False, "ssim": True}),
    ((float("nan"), 0.08, 20.0, 0.5), {"mae_lesion": None, "mae": False, "psnr": False, "ssim": False}),
])
def test_beats_both_means_strictly_better_than_each_baseline(model, expected):
    table = pd.DataFrame([model, (0.46, 0.047, 26.6, 0.914), (0.36, 0.046, 27.5, 0.898)],
                         index=["model", "identity", "linear"], columns=["mae_lesion", "mae", "psnr", "ssim"])
    assert beats_both_baselines(table) == expected


def test_local_ray_shuts_down_on_error_and_restores_the_environment(monkeypatch):
    """The finally path, with Ray's start and stop recorded (the real start is in test_demo_model.py)."""
    import ray

    import breastflow.train.ray_cluster as cluster

    calls = []
    monkeypatch.setattr(cluster, "init_ray", lambda: calls.append("init") or True)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.delenv("RAY_LOG_TO_DRIVER", raising=False)
    with pytest.raises(RuntimeError, match="boom"), local_ray():
        assert "RAY_ADDRESS" not in os.environ
        raise RuntimeError("boom")
    assert calls == ["init", "shutdown"]
    assert os.environ["RAY_ADDRESS"] == "10.0.0.1:6379" and "RAY_LOG_TO_DRIVER" not in os.environ
    assert "ray" in sys.modules
