"""``breastflow sweep`` end to end on CPU: a Ray Tune sweep of Ray Train runs, ASHA stops the weak trial."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from ray_local import local_ray
from sweep_helpers import base_overrides, build_sweep_store

from breastflow.cli import main
from breastflow.select.sweep import read_sweep
from breastflow.train.checkpoint import list_checkpoints
from breastflow.train.losses_log import read_losses

pytestmark = pytest.mark.integration

EPOCHS = 2


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory) -> Iterator[None]:
    """One local Ray for the module, 3 CPUs, with the dashboard: Ray Train's PlacementGroupCleaner asks its
    state API whether a run's controller is alive before freeing the CPUs of a trial ASHA stopped mid-run."""
    with local_ray(tmp_path_factory.mktemp("ray-home"), num_cpus=3, dashboard=True):
        yield None


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return build_sweep_store(str(tmp_path_factory.mktemp("sweep-store")))


def test_asha_stops_the_weak_trial_and_the_best_config_is_recorded(ray_local, store, tmp_path):
    space = tmp_path / "space.yaml"
    # grid order is trial order: t0 learns (lr 2e-3, strong L1), t1 barely moves (lr 1e-7); run one at a time,
    # so at ASHA's first rung (epoch 1) t1 meets t0's better val_mae and is stopped there
    space.write_text("lr: {grid: [2.0e-3, 1.0e-7]}\nlambda_l1: 100.0\n")
    args = ["sweep", "pix2pixhd", store, "--space", str(space), "--samples", "1", "--name", "s1",
            "--max-concurrent", "1", "--grace-period", "1", "--reduction-factor", "2", "--json"]
    for item in base_overrides(EPOCHS):
        args += ["--set", item]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, (out.output, out.stderr, out.exception)
    printed = json.loads(out.stdout)
    record = read_sweep(store, "pix2pixhd", "s1")
    assert printed == record.model_dump(mode="json")
    assert record.max_t == EPOCHS and record.space == {"lr": {"grid": [2e-3, 1e-7]}, "lambda_l1": 100.0}
    trials = record.trials
    assert [t.trial for t in trials] == [0, 1] and [t.run for t in trials] == ["s1-t0", "s1-t1"]
    assert [t.config["lr"] for t in trials] == [2e-3, 1e-7] and all(t.config["lambda_l1"] == 100.0 for t in trials)
    assert all(t.error is None for t in trials)
    assert trials[0].epochs == trials[0].trained_epochs == EPOCHS and not trials[0].stopped_early
    # ASHA stopped t1 at its first rung; the kill is asynchronous, so its run may have trained a bit further
    assert trials[1].stopped_early and trials[1].epochs == 1 < record.max_t
    assert trials[1].trained_epochs >= trials[1].epochs
    # the best config is that of the trial with the best reported val_mae
    best = min(trials, key=lambda t: t.best)
    assert record.best_trial == best.trial and record.best_config == best.config and record.best_run == best.run
    # each trial is a training run of the engine: its checkpoints and losses (with val_mae) in the usual place
    for t in trials:
        checkpoints = list_checkpoints(t.run_uri)
        if t.stopped_early:  # killed asynchronously: an epoch's losses row is written before its checkpoint
            assert t.epochs <= len(checkpoints) <= t.trained_epochs, checkpoints
        else:
            assert len(checkpoints) == t.trained_epochs, checkpoints
        rows = read_losses(f"{t.run_uri}/losses.csv")
        assert [r["epoch"] for r in rows] == list(range(1, t.trained_epochs + 1))
        reported = [r["val_mae"] for r in rows[:t.epochs]]
        assert reported[-1] == pytest.approx(t.last) and min(reported) == pytest.approx(t.best)
    # the same name again is refused before Ray work starts
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "already exists" in again.output


@pytest.mark.slow
def test_random_space_four_trials_two_at_a_time(ray_local, store, tmp_path):
    from breastflow.select.sweep import SweepConfig, sweep_training
    from breastflow.select.sweep_space import read_space
    from breastflow.train.settings import build_train_run

    space_file = tmp_path / "space.yaml"
    space_file.write_text("lr: {loguniform: [1.0e-5, 3.0e-3]}\nn_layers_d: {choice: [1, 2]}\n"
                          "lambda_l1: {uniform: [0.0, 100.0]}\n")
    base = build_train_run("pix2pixhd", store, overrides=base_overrides(4))
    space = read_space(space_file, "pix2pixhd")
    result = sweep_training(base, space, SweepConfig(name="s4", samples=4, seed=3, verbose=0))
    print(f"4-trial sweep: {result.wall_s} s, trials {[(t.trial, t.epochs, t.stopped_early) for t in result.trials]}")
    assert len(result.trials) == 4 and all(t.error is None for t in result.trials)
    for t in result.trials:
        assert 1e-5 <= t.config["lr"] <= 3e-3 and t.config["n_layers_d"] in (1, 2)
        assert 1 <= t.epochs <= 4 and t.stopped_early == (t.epochs < 4)
    best = min(result.trials, key=lambda t: t.best)
    assert result.best_run == best.run and result.best_config == best.config
