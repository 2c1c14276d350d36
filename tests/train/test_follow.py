"""Following a run without Ray: the losses.csv follower, the dashboard address, and the Markdown summaries."""

from __future__ import annotations

import pytest

from breastflow.generate.config import GenerateResult
from breastflow.train.config import TrainResult, TrainRun
from breastflow.train.follow import (
    FollowedRun,
    LossFollower,
    dashboard_url,
    format_epoch,
)
from breastflow.train.losses_log import LossLog
from breastflow.train.report import (
    generate_markdown,
    samples_markdown,
    training_markdown,
)


def _run(store: str) -> TrainRun:
    return TrainRun(model="template", store=store, run="r1", model_options={"epochs": 2, "decay_epochs": 1})


def test_follower_hands_over_each_new_epoch_once_and_skips_rows_of_a_resumed_run(tmp_path):
    run = _run(str(tmp_path))
    log = LossLog(run.store, run.run_dir, keep_until=0)
    log.append({"epoch": 1, "step": 4, "g_total": 1.0})  # before following: an earlier invocation's epoch
    seen = []
    follower = LossFollower(run, seen.append, interval_s=60)
    assert follower.poll() == 0 and seen == []
    log.append({"epoch": 2, "step": 8, "g_total": 0.5})
    log.append({"epoch": 3, "step": 12, "g_total": 0.25})
    assert follower.poll() == 2 and [r["epoch"] for r in seen] == [2, 3]
    assert follower.poll() == 0
    # a restarted worker group drops epoch 3 and trains it again: it is handed over again
    again = LossLog(run.store, run.run_dir, keep_until=2)
    again.append({"epoch": 3, "step": 12, "g_total": 0.2})
    assert follower.poll() == 1 and seen[-1]["g_total"] == pytest.approx(0.2)


def test_follower_thread_polls_once_more_when_it_stops_and_survives_a_failing_callback(tmp_path):
    run = _run(str(tmp_path))
    calls = []

    def callback(row: dict) -> None:
        calls.append(row["epoch"])
        raise RuntimeError("log sink down")

    with LossFollower(run, callback, interval_s=3600):
        LossLog(run.store, run.run_dir, keep_until=0).append({"epoch": 1, "step": 1, "d_total": 0.3})
    assert calls == [1]


def test_dashboard_url_is_none_while_this_process_has_no_ray(monkeypatch):
    monkeypatch.setenv("RAY_OVERRIDE_DASHBOARD_URL", "http://127.0.0.1:1")
    assert dashboard_url() is None  # Ray not initialised in this process: no cluster to link to


def test_format_epoch_names_every_loss():
    assert format_epoch({"epoch": 3, "step": 12, "g_total": 2.0, "d_total": 0.5}, 5) == \
        "epoch 3/5 (step 12): d_total=0.5 g_total=2"


def _followed(tmp_path, dashboard: str | None) -> FollowedRun:
    run_uri = str(tmp_path / "checkpoints" / "template" / "r1")
    result = TrainResult(run="r1", run_uri=run_uri, checkpoints=[f"{run_uri}/epoch_000002", f"{run_uri}/epoch_000003"],
                         epochs=3, dataset_version="dsv1:abc", metrics={"g_total": 9.0, "epoch": 3})
    return FollowedRun(result=result, total_epochs=3, model="template", dashboard_url=dashboard,
                       losses=[{"epoch": 3, "step": 12, "g_total": 0.125, "d_l1": 0.5}],
                       samples=f"{run_uri}/epoch_000003/samples.png")


def test_training_markdown_holds_losses_checkpoints_and_the_dashboard_link(tmp_path):
    followed = _followed(tmp_path, "http://127.0.0.1:8265")
    text = training_markdown(followed)
    assert "| g_total | 0.125 |" in text and "| d_l1 | 0.5 |" in text  # losses.csv wins over Ray's metrics
    for uri in followed.result.checkpoints:
        assert f"`{uri}`" in text
    assert "| 2 |" in text and "| 3 |" in text
    assert "[http://127.0.0.1:8265](http://127.0.0.1:8265)" in text
    assert "not available" in training_markdown(_followed(tmp_path, None))
    samples = samples_markdown(followed)
    assert "epoch 3" in samples and f"`{followed.samples}`" in samples and "![" not in samples


def test_generate_markdown_gives_the_selection_that_reads_the_set(tmp_path):
    result = GenerateResult(name="g1", uri=f"{tmp_path}/synthetic/g1", series=["post_1"], studies=["s1", "s2"],
                            slices=8, checkpoint="checkpoints/template/r1/epoch_000003", model="template", epoch=3,
                            dataset_version="dsv1:abc")
    assert f"`store://{tmp_path}?synthetic=g1&series=post_1`" in generate_markdown(result, str(tmp_path))
    assert "`s3://b/store?synthetic=g1&series=post_1`" in generate_markdown(result, "s3://b/store")
