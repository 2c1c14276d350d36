"""Sweep space files and the sweep's input checks (no Ray)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sweep_helpers import TINY, base_overrides, build_sweep_store

from breastflow.cli import main
from breastflow.select.sweep import (
    SweepConfig,
    SweepError,
    check_space,
    sweep_training,
    trial_run,
)
from breastflow.select.sweep_space import SweepSpaceError, build_space, read_space
from breastflow.train.config import TrainRun
from breastflow.train.validation import ValidationError


def _base(store: str, **run) -> TrainRun:
    return TrainRun(model="pix2pixhd", model_options={**TINY, "epochs": 2, "decay_epochs": 0}, store=store, **run)


def test_keys_resolve_to_settings_and_distributions_to_tune(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("lr: {loguniform: [1.0e-4, 1.0e-3]}\nlambda_l1: {choice: [0.0, 10.0]}\n"
                    "model.n_layers_d: {grid: [2, 3]}\nbatch_size: {randint: [1, 3]}\nngf: 16\n")
    space = read_space(path, "pix2pixhd")
    assert [(p.key, p.section, p.field, p.kind) for p in space.params] == [
        ("lr", "model", "lr", "loguniform"), ("lambda_l1", "model", "lambda_l1", "choice"),
        ("model.n_layers_d", "model", "n_layers_d", "grid"), ("batch_size", "run", "batch_size", "randint"),
        ("ngf", "model", "ngf", "fixed")]
    tune_space = space.to_tune()
    assert tune_space["model.n_layers_d"] == {"grid_search": [2, 3]} and tune_space["ngf"] == 16
    assert tune_space["lr"].lower == 1e-4 and tune_space["lr"].upper == 1e-3
    run = trial_run(_base(str(tmp_path)), space, {"lr": 5e-4, "lambda_l1": 10.0, "model.n_layers_d": 2,
                                                  "batch_size": 2, "ngf": 16}, "sw", 3)
    assert run.run == "sw-t3" and run.validate_every == 1 and run.batch_size == 2
    assert (run.model_options["lr"], run.model_options["lambda_l1"], run.model_options["n_layers_d"],
            run.model_options["ngf"]) == (5e-4, 10.0, 2, 16)
    assert space.describe()["lr"] == {"loguniform": [1e-4, 1e-3]}


@pytest.mark.parametrize(("text", "match"), [
    ("", r"space\.yaml: the space is empty"),
    ("{}", "the space is empty"),
    ("[1, 2]", "expected a mapping"),
    ("lr: {loguniform: [1e-4}", "cannot parse"),
    ("lamda_l1: {choice: [1.0]}", r"space\.yaml: unknown key 'lamda_l1'; nearest: lambda_l1"),
    ("model.n_layer_d: {choice: [2]}", r"model has no field 'n_layer_d'; nearest: model.n_layers_d"),
    ("epochs: {choice: [1, 2]}", r"'epochs' cannot be swept: the epoch budget is ASHA's max_t"),
    ("lr: {logunifrom: [1.0e-4, 1.0e-3]}", r"key 'lr': unknown distribution 'logunifrom' \(did you mean loguniform"),
    ("lr: {loguniform: [0, 1.0e-3]}", r"key 'lr': loguniform needs \[low, high\] with 0 < low < high"),
    ("lr: {uniform: [1.0e-3, 1.0e-4]}", r"key 'lr': uniform needs"),
    ("lr: {choice: []}", r"key 'lr': choice needs a non-empty list"),
    ("lr: [1.0e-4, 1.0e-3]", "a bare list is ambiguous"),
    ("lr: {choice: [1.0e-4], grid: [1.0e-3]}", "expected one distribution"),
    ("lr: 1.0e-4", "every setting is fixed"),
    ("lr: {choice: [1.0e-4]}\nmodel.lr: {choice: [1.0e-3]}", "keys 'lr' and 'model.lr' both set model.lr"),
])
def test_bad_space_files_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SweepSpaceError, match=match):
        read_space(path, "pix2pixhd")


def test_a_value_the_model_rejects_names_the_key_and_value(tmp_path):
    space = build_space({"n_layers_d": {"choice": [2, 0]}}, "pix2pixhd", source="s.yaml")
    with pytest.raises(SweepSpaceError, match=r"s\.yaml: key 'n_layers_d': value 0 is invalid for pix2pixhd"):
        check_space(_base(str(tmp_path)), space)


def test_a_store_without_val_studies_stops_before_ray(tmp_path):
    store = build_sweep_store(str(tmp_path / "store"), val=False)
    space = build_space({"lr": {"choice": [1e-3]}}, "pix2pixhd")
    with pytest.raises(ValidationError, match="no val studies"):
        sweep_training(_base(store), space, SweepConfig(name="s"))


def test_an_existing_sweep_name_is_refused(tmp_path):
    store = build_sweep_store(str(tmp_path / "store"))
    (tmp_path / "store/checkpoints/pix2pixhd/old-t0").mkdir(parents=True)
    space = build_space({"lr": {"choice": [1e-3]}}, "pix2pixhd")
    with pytest.raises(SweepError, match="runs of a sweep named 'old' already exist"):
        sweep_training(_base(store), space, SweepConfig(name="old"))


def test_cli_bad_space_exits_nonzero_naming_the_key(tmp_path):
    space = tmp_path / "space.json"
    space.write_text('{"lr": {"loguniform": [1e-4, 1e-3]}, "n_layers": {"choice": [2, 3]}}')
    args = ["sweep", "pix2pixhd", str(tmp_path / "store"), "--space", str(space), "--name", "s"]
    for item in base_overrides(2):
        args += ["--set", item]
    out = CliRunner().invoke(main, args)
    assert out.exit_code != 0 and "unknown key 'n_layers'" in out.output and "n_layers_d" in out.output


def test_the_example_space_file_is_valid():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "deployments/sweeps/pix2pixhd_small.yaml"
    space = read_space(path, "pix2pixhd")
    assert {p.key for p in space.params} == {"lr", "lambda_l1", "lambda_fm", "n_layers_d", "batch_size"}
    check_space(_base("/tmp/unused-store"), space)
