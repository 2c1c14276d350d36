"""breastflow select on a real local Ray (one per module): known quality order, failures, cache, reuse, CLI.

Checkpoints of run ``r1``: untrained (epoch 0), trained 6 epochs with a real optimisation loop,
one with corrupted bytes (epoch 8) and one claiming another dataset version (epoch 9).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ray_local import local_ray
from select_helpers import build_select_store, corrupt_checkpoint, train_checkpoints

from breastflow.registry import RegistryError
from breastflow.select.results import SelectError, read_selection
from breastflow.select.run import SelectConfig, resolve_metrics, select_checkpoints
from breastflow.store import layout

pytestmark = pytest.mark.integration
METRICS = ("fid_img", "ssim", "mse", "mae")


@pytest.fixture(scope="module")
def ray_select(tmp_path_factory):
    """One local Ray instance for the module: 2 CPUs, no dashboard."""
    with local_ray(tmp_path_factory.mktemp("ray-home"), num_cpus=2):
        yield None


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("select")
    url = build_select_store(str(root / "store"))
    run_dir = Path(url) / layout.checkpoint_dir("pix2pixhd", "r1")
    _, trained = train_checkpoints(url, run_dir, (0, 6))
    shutil.copytree(trained, run_dir / "epoch_000008")
    corrupt_checkpoint(run_dir / "epoch_000008")
    other = train_checkpoints(url, root / "other", (9,), version="dsv1:" + "d" * 64)[0]
    shutil.copytree(other, run_dir / "epoch_000009")
    return url


@pytest.fixture(scope="module")
def selected(ray_select, store):
    return select_checkpoints(SelectConfig(store=store, run="r1", metrics=METRICS, extra_metrics=()))


def test_trained_checkpoint_chosen_failures_reported(selected, store):
    epochs = [row["epoch"] for row in selected.table]
    assert epochs == [0, 6]
    assert selected.selected.endswith("epoch_000006") and selected.selected_row()["same"] == 0.0
    assert selected.table[0]["same"] == 1.0  # untrained: worst on every metric
    failed = {f["checkpoint"].rsplit("/", 1)[-1]: f["error"] for f in selected.failed}
    assert set(failed) == {"epoch_000008", "epoch_000009"}
    assert failed["epoch_000008"].startswith("CheckpointError") and "not a breastflow checkpoint" in failed[
        "epoch_000008"]
    assert failed["epoch_000009"].startswith("CheckpointMismatchError") and "dsv1:" + "d" * 64 in failed["epoch_000009"]
    assert selected.train_dataset_version and selected.train_dataset_version != "dsv1:" + "d" * 64
    stored = read_selection(store, "pix2pixhd", "r1")
    assert stored == selected and stored.uri.endswith("checkpoints/pix2pixhd/r1/selected.json")
    assert set(selected.selected_row()["scaled"]) == set(METRICS)
    # the untrained generator's output leaves the real range: recorded, not refused
    assert any(n.startswith("epoch_000000: WARNING") and "clipped" in n for n in selected.notes)


def test_real_features_extracted_once(selected, store):
    # the driver extracted the real Inception features once; every trial read them from the cache
    assert selected.metric_config["warm_cache_misses"] == 1
    assert all(row["cache_misses"] == 0 and row["cache_hits"] == 1 for row in selected.table)
    cached = list((Path(store) / layout.EVAL_FEATURES).glob("*.npy"))
    assert len(cached) == 1


def test_fan_out_equals_sequential(selected, store):
    import torch

    from breastflow.evaluate.checkpoint import evaluate_checkpoint
    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.metrics.cache import FeatureCache

    torch.set_num_threads(1)  # as in the trials
    config = EvaluationConfig.model_validate(selected.metric_config["evaluation"])
    cache = FeatureCache(selected.metric_config["feature_cache"])  # the real features the trials read
    for row in selected.table:
        values = evaluate_checkpoint(row["checkpoint"], selected.selection, config,
                                     expect_dataset_version=selected.train_dataset_version, feature_cache=cache)
        for metric in (*METRICS, "roi_mse", "roi_ssim"):
            assert values[metric] == row[metric], (row["epoch"], metric)
    assert (cache.hits, cache.misses) == (len(selected.table), 0)


def test_rerun_reuses_stored_evaluations_and_cli_json(selected, store):
    from click.testing import CliRunner

    from breastflow.cli.select import select as select_command

    files = sorted((Path(store) / "eval" / "checkpoints").rglob("*.json"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    out = CliRunner().invoke(select_command, ["r1", store, "--metrics", ",".join(METRICS), "--extra", "", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output[out.output.index("{"):])
    assert data["selected"] == selected.selected
    chosen = [row for row in data["table"] if row["checkpoint"] == data["selected"]]
    assert len(chosen) == 1 and all(m in chosen[0] for m in (*METRICS, "same"))
    assert all(row["reused"] for row in data["table"]) and len(data["failed"]) == 2
    assert [f.stat().st_mtime_ns for f in files] == stamps  # nothing evaluated again


def test_every_checkpoint_failing_is_a_clear_error(ray_select, store):
    run_dir = Path(store) / layout.checkpoint_dir("pix2pixhd", "broken")
    shutil.copytree(Path(store) / layout.checkpoint_dir("pix2pixhd", "r1") / "epoch_000008", run_dir / "epoch_000001")
    with pytest.raises(SelectError, match=r"no checkpoint of .*broken could be evaluated \(1 failed\)"
                                          r":\n.*epoch_000001: CheckpointError"):
        select_checkpoints(SelectConfig(store=store, run="broken", metrics=("mse",), extra_metrics=(), roi=False))


def test_bad_input(store):
    with pytest.raises(SelectError, match=r"no checkpoints in .*checkpoints/pix2pixhd/nothing"):
        select_checkpoints(SelectConfig(store=store, run="nothing", metrics=("mse",)))
    with pytest.raises(RegistryError, match=r"unknown metric 'fid_imgg'; did you mean 'fid_img'"):
        select_checkpoints(SelectConfig(store=store, run="r1", metrics=("fid_imgg", "ssim")))
    with pytest.raises(RegistryError, match=r"unknown selection criterion 'sam'; did you mean 'same'"):
        select_checkpoints(SelectConfig(store=store, run="r1", criterion="sam"))


def test_fid_rad_policy(monkeypatch, tmp_path):
    monkeypatch.delenv("BREASTFLOW_RADIMAGENET_WEIGHTS", raising=False)
    monkeypatch.delenv("BREASTFLOW_LPIPS_WEIGHTS", raising=False)
    criterion, ranked, extra, notes = resolve_metrics(SelectConfig(store="s", run="r"), (24, 24))
    assert criterion == "same" and ranked == ["fid_img", "ssim", "mse", "mae"]
    assert any(n.startswith("fid_rad left out") for n in notes)  # said, not silent
    assert extra == ["psnr", "frd"]  # ms_ssim too large for 24x24, lpips without weights: left out with notes
    with pytest.raises(SelectError, match="fid_rad needs RadImageNet weights"):
        resolve_metrics(SelectConfig(store="s", run="r", metrics=("fid_rad", "ssim")), (24, 24))
    weights = tmp_path / "rad.h5"
    weights.write_bytes(b"x")
    monkeypatch.setenv("BREASTFLOW_RADIMAGENET_WEIGHTS", str(weights))
    _, ranked, _, notes = resolve_metrics(SelectConfig(store="s", run="r"), (24, 24))
    assert ranked == ["fid_img", "fid_rad", "ssim", "mse", "mae"] and not any("fid_rad" in n for n in notes)
    assert resolve_metrics(SelectConfig(store="s", run="r", model="progressive_gan"), None)[:2] == ("swd", ["swd"])


def test_checkpoints_on_s3(ray_select, store, selected):
    """Store and checkpoints on a moto S3 endpoint (127.0.0.1): same choice and numbers as locally."""
    import uuid

    from breastflow.store.fs import StoreLocation
    from breastflow.store.local_s3 import local_s3

    local_run = Path(store) / layout.checkpoint_dir("pix2pixhd", "r1")
    with local_s3(set_env=False) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        bucket = f"sel-{uuid.uuid4().hex[:10]}"
        server.make_bucket(bucket)
        url = f"s3://{bucket}/store"
        build_select_store(url)
        fs = StoreLocation.from_url(url).filesystem()
        for epoch in ("epoch_000000", "epoch_000006"):
            fs.put(str(local_run / epoch / "state.pt"), f"{bucket}/store/{layout.checkpoint_dir('pix2pixhd', 'r1')}/"
                                                       f"{epoch}/state.pt")
        # FRD (radiomics, ~1 s a set) in place of FID: the real features are cached on S3 all the same
        remote = select_checkpoints(SelectConfig(store=url, run="r1", metrics=("frd", "ssim", "mse", "mae"),
                                                 extra_metrics=()))
        assert remote.selected == f"{url}/checkpoints/pix2pixhd/r1/epoch_000006" and not remote.failed
        assert remote.dataset_version == selected.dataset_version  # same studies, same voxels
        for row, local in zip(remote.table, selected.table, strict=True):
            for metric in ("ssim", "mse", "mae", "roi_mse", "roi_ssim"):
                assert row[metric] == local[metric], metric
        assert remote.metric_config["warm_cache_misses"] == 1 and all(r["cache_hits"] == 1 for r in remote.table)
        assert len(fs.glob(f"{bucket}/store/eval/features/*.npy")) == 1
        assert read_selection(url, "pix2pixhd", "r1") == remote
        assert len(fs.glob(f"{bucket}/store/eval/checkpoints/pix2pixhd/r1/*/*.json")) == 2


def test_trial_resources_follow_the_cluster(ray_select):
    from breastflow.select.fanout import plan_resources, trial_resources

    assert trial_resources(5, None, None) == ({"cpu": 1}, 2)  # the module's Ray: 2 CPUs, no GPU
    assert trial_resources(5, None, 1) == ({"cpu": 1}, 1)
    assert plan_resources({"CPU": 16.0, "GPU": 1.0}, 8) == ({"cpu": 1, "gpu": 0.125}, 8)
    assert plan_resources({"CPU": 16.0, "GPU": 1.0}, 40) == ({"cpu": 1, "gpu": 1 / 16}, 16)
    assert plan_resources({"CPU": 16.0, "GPU": 2.0}, 3, gpu_per_trial=0.5) == ({"cpu": 1, "gpu": 0.5}, 3)
    assert plan_resources({"CPU": 16.0, "GPU": 1.0}, 8, gpu_per_trial=0.5) == ({"cpu": 1, "gpu": 0.5}, 2)
