"""``breastflow train`` input handling without starting Ray: nearest model names, --set mapping, RAY_ADDRESS errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from train_helpers import TINY_PIX2PIXHD, build_tiny_store

from breastflow.cli import main
from breastflow.store.local_s3 import free_port
from breastflow.train.checkpoint import (
    CheckpointMismatchError,
    checkpoint_dir_name,
    save_checkpoint,
)
from breastflow.train.config import TrainRun
from breastflow.train.launch import preflight
from breastflow.train.ray_cluster import RayClusterError, check_reachable, init_ray
from breastflow.train.settings import SettingsError, build_train_run, parse_overrides


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_tiny_store(str(tmp_path_factory.mktemp("train-cli") / "store"))


def test_unknown_model_names_the_nearest(tmp_path):
    result = CliRunner().invoke(main, ["train", "pix2pixHDD", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown GAN model 'pix2pixHDD'" in result.output and "did you mean 'pix2pixhd'" in result.output


@pytest.mark.parametrize("item, section, field, value", [
    ("epochs=3", "model", "epochs", 3),
    ("decay_epochs=0", "model", "decay_epochs", 0),
    ("perceptual=off", "model", "perceptual", "off"),
    ("checkpoint_every=5", "run", "checkpoint_every", 5),
    ("batch_size=4", "run", "batch_size", 4),
    ("image_size=64", "dataset", "image_size", 64),
    ("model.ngf=8", "model", "ngf", 8),
    ("dataset.targets=[\"post_1\",\"post_2\"]", "dataset", "targets", ["post_1", "post_2"]),
])
def test_set_maps_keys_to_model_dataset_and_run(item, section, field, value):
    assert parse_overrides([item])[section] == {field: value}


@pytest.mark.parametrize("item, match", [("epochs", "expected key=value"), ("epoch=3", "unknown key")])
def test_bad_set_items_are_clear_errors(item, match):
    with pytest.raises(SettingsError, match=match):
        parse_overrides([item])


def test_config_file_then_set_then_options(tmp_path, store):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"model": {**TINY_PIX2PIXHD, "epochs": 7}, "dataset": {"image_size": 32},
                                  "run": {"checkpoint_every": 3, "seed": 5}}))
    run = build_train_run("pix2pixhd", store, config, ["epochs=2", "decay_epochs=1", "batch_size=2"],
                          workers=2, run="r1")
    assert run.model_options["epochs"] == 2 and run.model_options["ngf"] == 8 and run.total_epochs == 3
    assert (run.checkpoint_every, run.seed, run.batch_size, run.workers, run.run) == (3, 5, 2, 2, "r1")
    assert run.dataset_spec["image_size"] == 32 and run.dataset_spec["targets"] == ["post_1"]
    assert run.run_uri == f"{store}/checkpoints/pix2pixhd/r1"


def test_invalid_model_option_through_the_cli_is_a_clear_error(store):
    result = CliRunner().invoke(main, ["train", "template", store, "--set", "perceptual=off"])
    assert result.exit_code != 0 and "perceptual" in result.output


def test_missing_phase_stops_before_ray_starts(store):
    result = CliRunner().invoke(main, ["train", "template", store, "--set", "dataset.targets=[\"post_3\"]"])
    assert result.exit_code != 0 and "phase 'post_3' is missing" in result.output


def test_a_run_that_exists_with_another_config_is_refused(store):
    run = TrainRun(model="template", store=store, run="clash", model_options={"width": 4})
    from breastflow.models import build_model

    version = preflight(run)
    save_checkpoint(f"{run.run_uri}/{checkpoint_dir_name(1)}", build_model("template", {"width": 4}), version,
                    run.model_dump(mode="json"))
    with pytest.raises(CheckpointMismatchError, match="differs in width"):
        preflight(run.model_copy(update={"model_options": {"width": 6}}))
    preflight(TrainRun(model="template", store=store, run="clash", model_options={"width": 4, "epochs": 5}))


def test_unreachable_ray_address_names_it(monkeypatch):
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(RayClusterError, match=f"RAY_ADDRESS={address}"):
        check_reachable(address)
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(RayClusterError, match=f"cannot reach the Ray cluster at RAY_ADDRESS={address}"):
        init_ray()


@pytest.mark.parametrize("extra, match", [([], "not configured"), (["--set", "vgg_weights=/nope/vgg19.pth"],
                                                                  "'/nope/vgg19.pth' does not exist")])
def test_missing_vgg_weights_stop_before_ray_starts(store, extra, match):
    result = CliRunner().invoke(main, ["train", "pix2pixhd", store, "--set", "model.ngf=8", *extra])
    assert result.exit_code != 0 and match in result.output and "perceptual=off" in result.output


def test_a_complete_run_returns_without_starting_ray(store):
    import ray

    from breastflow.models import build_model
    from breastflow.train.launch import launch_training

    options = {"width": 4, "epochs": 1, "decay_epochs": 0}
    run = TrainRun(model="template", store=store, run="complete", model_options=options)
    model = build_model("template", options)
    model.end_epoch()
    save_checkpoint(f"{run.run_uri}/{checkpoint_dir_name(1)}", model, preflight(run), run.model_dump(mode="json"))
    result = launch_training(run)
    assert (result.epochs, len(result.checkpoints)) == (1, 1) and not ray.is_initialized()
