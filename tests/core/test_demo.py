"""The main job end to end: phantom -> store (real Dask LocalCluster) -> baseline metrics."""

import os
import stat

import numpy as np
import pandas as pd
import pydicom
import pytest

from breastflow.deid.pseudonym import KEY_ENV_VAR
from breastflow.demo import POST1, PRE, run_demo
from breastflow.ingest.pseudonyms import Pseudonymiser


def _dicom_volume(folder):
    slices = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in slices])


@pytest.mark.integration
def test_demo_runs_end_to_end_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV_VAR, "k" * 64)  # fixed key: pseudonyms, hence splits, are deterministic
    first = run_demo(tmp_path, studies=3, seed=5, workers=1)
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
    assert sorted(first.kinetics["designed"]) == sorted(lesions.loc[lesions["study_id"].isin(multi_phase), "curve_type"])

    again = run_demo(tmp_path, studies=3, seed=5, workers=1)
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
