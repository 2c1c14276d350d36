"""The training flow under a real Prefect API, on a real local Ray instance that the flow starts, and its form.

One Ray run for the module (Ray start-up is 25-60 s here): the ``template``
family, 2 epochs, 1 worker, on the 3-study phantom store of tests/train, then
generation of the test split from the last checkpoint.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))  # train_helpers

from ray_local import ray_settings
from train_helpers import build_tiny_store

from breastflow.generate.synthetic import list_synthetic_sets
from breastflow.store.fs import StoreLocation
from breastflow.train.checkpoint import (
    SAMPLES_FILE,
    STATE_FILE,
    epoch_of_dir,
    list_checkpoints,
)
from breastflow.train.settings import build_train_run
from flows.train import VGG_WEIGHTS_ENV, TrainParameters, train_flow
from tasks.train import GENERATE_KEY, SAMPLES_KEY, SUMMARY_KEY


@pytest.fixture(scope="module")
def local_ray_settings():
    """Ray settings of a local test instance (auth off: nothing written to ~/.ray; loopback); Ray is shut down after."""
    with ray_settings():
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory, local_ray_settings):
    """One flow run: template, 2 epochs (1 + 1 decay), a checkpoint each epoch, 1 worker, then generate 'test'."""
    import ray

    assert not ray.is_initialized()  # the flow must start Ray itself
    store = build_tiny_store(str(tmp_path_factory.mktemp("trainflow") / "store"))
    params = TrainParameters(model="template", store=store, run="ui", epochs=1, decay_epochs=1, checkpoint_every=1,
                             image_size=32, batch_size=2, workers=1, generate_split="test", generate_name="ui-e2",
                             follow_interval_s=1.0)
    state = train_flow(params, return_state=True)
    return store, state, ray.is_initialized()


async def _artifacts_and_logs(flow_run_id):
    async with get_client() as client:
        artifacts = [a for a in await client.read_artifacts() if a.flow_run_id == flow_run_id]
        logs = await client.read_logs()
    return artifacts, [log.message for log in logs if log.flow_run_id == flow_run_id]


@pytest.mark.integration
def test_flow_trains_on_ray_publishes_checkpoints_losses_and_dashboard(trained):
    store, state, ray_still_running = trained
    assert state.is_completed(), state.message
    summary = state.result()
    assert not ray_still_running  # the local instance the flow started is stopped again
    run_uri = StoreLocation.from_url(store).join("checkpoints", "template", "ui")
    checkpoints = list_checkpoints(run_uri)
    assert summary["checkpoints"] == checkpoints
    assert [epoch_of_dir(c) for c in checkpoints] == [1, 2] and summary["epochs"] == 2
    assert all(Path(c, STATE_FILE).is_file() and Path(c, SAMPLES_FILE).is_file() for c in checkpoints)
    assert summary["dashboard"] and summary["dashboard"].startswith("http://127.0.0.1:")

    artifacts, logs = asyncio.run(_artifacts_and_logs(state.state_details.flow_run_id))
    by_key = {a.key: str(a.data) for a in artifacts}
    assert {SUMMARY_KEY, SAMPLES_KEY, GENERATE_KEY} <= set(by_key)
    text = by_key[SUMMARY_KEY]
    for uri in checkpoints:
        assert f"`{uri}`" in text
    losses = {k: v for k, v in summary["metrics"].items() if k.startswith(("g_", "d_"))}
    assert losses
    for name, value in losses.items():
        assert f"| {name} | {value:.6g} |" in text
    assert f"[{summary['dashboard']}]({summary['dashboard']})" in text
    assert f"`{checkpoints[-1]}/{SAMPLES_FILE}`" in by_key[SAMPLES_KEY]
    # the follower logged every epoch while the run trained (and once more after it returned)
    assert any("epoch 1/2" in m for m in logs) and any("epoch 2/2" in m for m in logs)


@pytest.mark.integration
def test_flow_generates_the_requested_split_from_the_last_checkpoint(trained):
    store, state, _ = trained
    summary = state.result()
    assert summary["synthetic"] == "ui-e2"
    assert "ui-e2" in list_synthetic_sets(StoreLocation.from_url(store))
    artifacts, _ = asyncio.run(_artifacts_and_logs(state.state_details.flow_run_id))
    text = next(str(a.data) for a in artifacts if a.key == GENERATE_KEY)
    assert f"store://{store}?synthetic=ui-e2&series=post_1" in text and "1 studies" in text


def test_unknown_model_fails_validation_with_the_nearest_names(tmp_path):
    with pytest.raises(ValidationError, match="did you mean 'pix2pixhd'"):
        TrainParameters(model="pix2pixh", store=str(tmp_path))


def test_the_flow_refuses_bad_parameters_before_starting_ray(tmp_path):
    import ray

    state = train_flow(params={"model": "pix2pix_hd", "store": str(tmp_path)}, return_state=True)
    assert state.is_failed()
    assert "pix2pixhd" in state.message or "pix2pixhd" in str(state.data)
    assert not ray.is_initialized()


def test_form_fields_map_to_the_same_run_as_the_cli_set_keys(tmp_path):
    store = str(tmp_path)
    form = TrainParameters(model="pix2pixhd", store=store, run="r1", epochs=3, decay_epochs=2, checkpoint_every=5,
                           image_size=64, batch_size=2, perceptual="off", overrides=["model.ngf=8"], workers=2,
                           gpu=True)
    cli = build_train_run("pix2pixhd", store, None,
                          ["model.ngf=8", "epochs=3", "decay_epochs=2", "checkpoint_every=5", "image_size=64",
                           "batch_size=2", "perceptual=off"], workers=2, gpu=True, run="r1")
    assert form.train_run() == cli
    assert cli.model_options["ngf"] == 8 and cli.dataset_spec["image_size"] == 64 and cli.total_epochs == 5


def test_form_rejects_a_setting_twice_and_a_setting_the_model_lacks(tmp_path):
    with pytest.raises(ValidationError, match="given both"):
        TrainParameters(model="pix2pixhd", store=str(tmp_path), epochs=3, overrides=["model.epochs=4"])
    with pytest.raises(ValidationError, match="'template' has no setting \\['perceptual'\\]"):
        TrainParameters(model="template", store=str(tmp_path), perceptual="off")
    with pytest.raises(ValidationError, match="unknown key"):
        TrainParameters(model="template", store=str(tmp_path), overrides=["epoch=3"])


def test_vgg_weights_default_to_the_workers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(VGG_WEIGHTS_ENV, "/weights/vgg19.pth")
    run = TrainParameters(model="pix2pixhd", store=str(tmp_path)).train_run()
    assert run.model_options["vgg_weights"] == "/weights/vgg19.pth"
    off = TrainParameters(model="pix2pixhd", store=str(tmp_path), perceptual="off").train_run()
    assert off.model_options["vgg_weights"] is None
    assert "vgg_weights" not in TrainParameters(model="template", store=str(tmp_path)).train_run().model_options
    form = TrainParameters(model="pix2pixhd", store=str(tmp_path), overrides=["vgg_weights=/other/vgg19.pth"])
    assert form.train_run().model_options["vgg_weights"] == "/other/vgg19.pth"  # the form's own value wins
