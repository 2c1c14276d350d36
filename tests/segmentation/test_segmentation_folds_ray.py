"""Folds as Ray tasks: parallel on a real local Ray, resumable from the store, killed workers resume, ensemble = mean.

One local Ray (3 CPUs) for the module. The store is the tiny two-vendor phantom
of segmentation_helpers (8 x 24 x 32 voxels, 7 pool + 4 test studies); folds
train the quick plan on real post-contrast items with a few short epochs.
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ray_local

import numpy as np
import pytest
from ray_local import local_ray
from segmentation_helpers import build_segmentation_store

from breastflow.segmentation.cases import pool_cases, segmentation_cases
from breastflow.segmentation.experiment import fold_items, test_items, train_items
from breastflow.segmentation.fold_store import (
    FoldCheckpointError,
    load_fold_network,
    read_fold_record,
)
from breastflow.segmentation.folds import patient_folds
from breastflow.segmentation.folds_ray import (
    EnsembleJob,
    FoldJob,
    load_volumes,
    run_ensemble,
    run_fold,
    run_folds,
    submit_folds,
)
from breastflow.segmentation.plan import plan_from_cases
from breastflow.segmentation.preprocess import PreprocessConfig, SegmentationSource
from breastflow.segmentation.scenarios import TrainSet
from breastflow.segmentation.train import (
    FoldState,
    FoldTrainConfig,
    dice_score,
    ensemble_probabilities,
    predict_probabilities,
    train_fold,
)
from breastflow.store.layout import segmentation_fold_dir

POST = SegmentationSource.REAL_POST


@pytest.fixture(scope="module")
def ray_seg(tmp_path_factory):
    with local_ray(tmp_path_factory.mktemp("ray-home"), num_cpus=3):
        yield None


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    loc = build_segmentation_store(str(tmp_path_factory.mktemp("folds") / "store"), synthetic=None)
    cases = segmentation_cases(loc.url)
    plan = plan_from_cases(pool_cases(cases), quick=True)
    pre = PreprocessConfig(n4=False, target_spacing=plan.target_spacing)
    folds = patient_folds([c.patient for c in pool_cases(cases)], k=3)
    return loc, cases, plan, pre, folds


def jobs_for(setting, experiment: str, config: FoldTrainConfig) -> list[FoldJob]:
    loc, cases, plan, pre, folds = setting
    items = train_items(cases, TrainSet((POST,)))
    out = []
    for fold in folds:
        train, val = fold_items(items, fold)
        out.append(FoldJob(loc.url, "real_post", fold.index, segmentation_fold_dir(experiment, "real_post", fold.index),
                           tuple(train), tuple(val), plan, pre, config))
    return out


def test_folds_run_in_parallel_on_ray_and_are_reused(ray_seg, setting) -> None:
    config = FoldTrainConfig.quick(epochs=6, iterations=6, torch_threads=1)
    outcomes = run_folds(jobs_for(setting, "par", config))
    assert [o.fold for o in outcomes] == [0, 1, 2]
    assert len({o.pid for o in outcomes}) == 3  # three worker processes, one CPU each
    assert max(o.trained_from for o in outcomes) < min(o.trained_to for o in outcomes)  # training spans overlap
    assert all(o.start_epoch == 0 and o.epochs == 6 and not o.reused for o in outcomes)
    loc = setting[0]
    for o in outcomes:
        record = read_fold_record(loc, o.folder)
        assert record["complete"] and record["epoch"] == 6 and record["val_dice"] == pytest.approx(o.val_dice)
    again = run_folds(jobs_for(setting, "par", config))
    assert all(o.reused and o.losses == p.losses for o, p in zip(again, outcomes, strict=True))


def test_a_fold_continues_from_its_checkpoint_not_from_zero(setting) -> None:
    """Run fold 0 to epoch 2, ask for 4: it starts at 2 and keeps the first losses; other items are refused."""
    short = jobs_for(setting, "resume", FoldTrainConfig.quick(epochs=2, iterations=3, torch_threads=1))[0]
    first = run_fold(short)
    assert first.start_epoch == 0 and len(first.losses) == 2
    longer = replace(short, config=short.config.model_copy(update={"epochs": 4}))
    second = run_fold(longer)
    assert second.start_epoch == 2 and len(second.losses) == 4
    assert second.losses[:2] == first.losses
    assert read_fold_record(setting[0], longer.folder)["epoch"] == 4
    other = replace(longer, train=longer.train[1:])
    with pytest.raises(FoldCheckpointError, match="other items"):
        run_fold(other)


def test_a_killed_fold_worker_resumes_from_its_checkpoint(ray_seg, setting) -> None:
    import ray

    loc = setting[0]
    jobs = jobs_for(setting, "kill", FoldTrainConfig.quick(epochs=40, iterations=2, torch_threads=1))[:1]
    (ref,) = submit_folds(jobs, max_retries=2)
    deadline = time.monotonic() + 240
    record = None
    while time.monotonic() < deadline:
        record = read_fold_record(loc, jobs[0].folder)
        if record is not None and record["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert record is not None and not record["complete"], "the fold finished before it could be killed"
    killed_pid, killed_at = record["pid"], record["epoch"]
    os.kill(killed_pid, signal.SIGKILL)
    outcome = ray.get(ref, timeout=300)
    assert outcome.pid != killed_pid
    assert outcome.start_epoch >= killed_at > 0  # resumed, not restarted
    assert outcome.epochs == 40 and read_fold_record(loc, jobs[0].folder)["complete"]


def test_ensemble_is_the_mean_of_the_fold_predictions(ray_seg, setting) -> None:
    loc, cases, plan, pre, _ = setting
    config = FoldTrainConfig.quick(epochs=6, iterations=6, torch_threads=1)
    jobs = jobs_for(setting, "par", config)
    run_folds(jobs)  # reused from the parallel test when it ran first
    tests = tuple(test_items(cases, POST))
    job = EnsembleJob(loc.url, "real_post", tuple(j.folder for j in jobs), tests, plan, pre, config)
    scores = run_ensemble(job)
    networks = [load_fold_network(loc, j.folder, plan) for j in jobs]
    for volume in load_volumes(loc.url, tests, pre):
        each = [predict_probabilities(n, volume.image, plan, config) for n in networks]
        mean = np.mean(each, axis=0)
        np.testing.assert_allclose(ensemble_probabilities(networks, volume.image, plan, config), mean, atol=1e-6)
        assert scores[volume.name] == pytest.approx(dice_score(mean, volume.mask))
        assert not np.allclose(each[0], each[1])  # the folds differ, so the mean is not one of them


class Interrupted(Exception):
    pass


def test_an_interrupted_training_resumed_from_its_state_equals_an_uninterrupted_one(setting) -> None:
    """The state holds optimiser, scheduler and random states: resuming draws the same patches, same losses."""
    job = jobs_for(setting, "unused", FoldTrainConfig.quick(epochs=4, iterations=3, torch_threads=1))[0]
    train, val = load_volumes(job.store, job.train, job.preprocess), load_volumes(job.store, job.val, job.preprocess)
    straight = train_fold(train, val, job.plan, job.config)
    saved = []

    def stop_after_two(state: FoldState) -> None:
        saved.append(copy.deepcopy(state))
        if state.epoch == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_fold(train, val, job.plan, job.config, on_epoch=stop_after_two)
    resumed = train_fold(train, val, job.plan, job.config, resume=saved[-1])
    assert resumed.start_epoch == 2
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-4)
    assert resumed.val_dice == pytest.approx(straight.val_dice, abs=1e-3)
