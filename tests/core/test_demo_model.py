"""The demo with its model step: Pix2PixHD on a real local Ray Train, generation, comparison; a second run reuses it."""

from __future__ import annotations

import math

import psutil
import pytest

from breastflow.deid.pseudonym import KEY_ENV_VAR
from breastflow.demo import run_demo
from breastflow.demo_model import MODEL_METRICS
from breastflow.demo_training import DemoTraining
from breastflow.demo_utility import DemoUtility
from breastflow.generate.synthetic import read_synthetic_commits
from breastflow.store.fs import StoreLocation
from breastflow.train.checkpoint import list_checkpoints

# a fixed key that makes the split (seed 0, 12 phantom studies) hold out studies with lesions
KEY = "k" * 64
TRAINING = DemoTraining(epochs=3, decay_epochs=1, checkpoint_every=2)
UTILITY = DemoUtility(epochs=2, folds=2)


def _ray_processes() -> list[psutil.Process]:
    """Ray's node processes started from this test process (raylet, GCS, dashboard ...)."""
    return [p for p in psutil.Process().children(recursive=True)
            if any(name in " ".join(p.cmdline()) for name in ("raylet", "gcs_server", "ray/dashboard"))]


@pytest.mark.slow
@pytest.mark.integration
def test_demo_trains_generates_compares_and_then_reuses_the_run(tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # nothing of Ray's lands in the real ~/.ray
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    result = run_demo(tmp_path / "demo", studies=12, seed=0, workers=1, training=TRAINING, utility=UTILITY)

    # the demo started its own Ray (this module's only one) and shut it down
    assert not ray.is_initialized() and not _ray_processes()
    step = result.model
    assert step is not None and result.model_skipped is None
    assert (step.epochs_before, step.epochs) == (0, TRAINING.total_epochs)
    loc = StoreLocation.from_url(str(result.store))
    run_uri = loc.join("checkpoints", TRAINING.model, step.run)
    assert list_checkpoints(run_uri) == step.checkpoints and len(step.checkpoints) == 2  # epochs 2 and 4
    held_out = sorted(result.catalog.loc[result.catalog.split != "train", "study"].unique())
    assert held_out and set(held_out) == set(result.eval_studies)
    synthetic = {(r.study, r.series) for r in read_synthetic_commits(loc, step.synthetic)}
    assert {(s, "post_1") for s in held_out} <= synthetic
    table = step.comparison
    assert list(table.index) == ["model", "identity", "linear"]
    assert all(math.isfinite(v) for v in table[list(MODEL_METRICS)].to_numpy().ravel())
    assert int(table.loc["model", "lesion_voxels"]) > 0
    # the baseline rows are the demo's own baselines on the same held-out studies
    assert table.loc["identity", "mae"] == pytest.approx(result.baselines.loc["identity", "mae"], rel=1e-9)
    assert set(step.beats_both) == set(MODEL_METRICS) and all(v in (True, False) for v in step.beats_both.values())
    assert {"train", "generate", "compare", "select"} <= set(result.timings)
    # step 7: every checkpoint evaluated on Ray Tune (same Ray instance), the choice recorded, the report written
    chosen = result.selection
    assert chosen is not None and chosen.selection.selected in [row["checkpoint"] for row in chosen.selection.table]
    assert [row["checkpoint"].rsplit("/", 1)[-1] for row in chosen.selection.table] == \
        [c.rsplit("/", 1)[-1] for c in step.checkpoints] and not chosen.selection.failed
    assert loc.filesystem().exists(loc.fs_path(f"checkpoints/{TRAINING.model}/{step.run}/selected.json"))
    assert chosen.report_html.endswith("report/report.html") and not chosen.report_reused
    assert chosen.report_split in ("test", "val")
    # step 8: the chosen checkpoint's synthetic post_1 of every study, then the reduced scenario-2 row
    useful = result.utility
    assert useful is not None and useful.checkpoint == chosen.selection.selected and useful.generated
    every = set(result.catalog.loc[result.catalog.series == "pre", "study"])
    assert every <= {r.study for r in read_synthetic_commits(loc, useful.synthetic)}
    rows = useful.result.rows
    assert [r.train for r in rows] == ["real_pre", "real_pre+syn_post"] and {r.test for r in rows} == {"real_post"}
    assert all(r.n_test == useful.test >= UTILITY.min_test_cases and 0.0 <= r.dice_mean <= 1.0 for r in rows)
    assert useful.result.test_splits == ("test", "val") and {"generate_all", "utility"} <= set(result.timings)
    assert loc.filesystem().exists(loc.fs_path(useful.result.report["html"]))

    again = run_demo(tmp_path / "demo", studies=12, seed=0, workers=1, training=TRAINING, utility=UTILITY)
    assert again.model is not None and again.model.run == step.run
    assert again.model.epochs_before == again.model.epochs == TRAINING.total_epochs  # not retrained
    assert again.model.checkpoints == step.checkpoints and not again.model.generated
    assert again.model.dashboard_url is None and not ray.is_initialized()  # Ray was not even started
    assert again.model.comparison.equals(table)
    # the second selection reuses every stored evaluation: same choice, Ray not started
    assert again.selection is not None and again.selection.selection.selected == chosen.selection.selected
    assert all(row["reused"] for row in again.selection.selection.table) and not ray.is_initialized()
    assert again.selection.report_html == chosen.report_html
    assert again.selection.report_reused
    # the second utility step reuses the synthetic set and every fold: the same Dice per case
    assert again.utility is not None and not again.utility.generated
    assert all(o.reused for folds in again.utility.result.trainings.values() for o in folds)
    assert [r.dice for r in again.utility.result.rows] == [r.dice for r in rows]
    assert not ray.is_initialized() and not _ray_processes()
