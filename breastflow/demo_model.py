"""The demo's model step: Pix2PixHD on Ray Train -> held-out synthetic ``post_1`` -> comparison with the baselines.

Step 6 of :mod:`breastflow.demo`. Everything goes through the project's own
stages: the training engine (:func:`breastflow.train.follow.train_and_follow`
on a :class:`~breastflow.train.config.TrainRun` built like ``breastflow train``
builds one), ``breastflow generate``'s library call
(:func:`breastflow.generate.run.generate_synthetic`) and
:func:`breastflow.generate.compare.compare_with_baselines`. Ray is a local
instance started and shut down here (:func:`local_ray`), and only when there is
something to train.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from breastflow.demo import POST1, paired_studies
from breastflow.demo_training import DemoTraining
from breastflow.store import layout

if TYPE_CHECKING:
    from breastflow.train.follow import FollowedRun

#: metrics of the model comparison and whether lower values are better
MODEL_METRICS: dict[str, bool] = {"mae_lesion": True, "mae": True, "psnr": False, "ssim": False}


@dataclass(frozen=True)
class ModelStep:
    """What the demo's model step produced.

    Attributes:
        training: the settings used.
        run: the training run's name (``<store>/checkpoints/<model>/<run>/``).
        checkpoints: every checkpoint of the run, oldest first.
        epochs: epochs of the checkpoint used; epochs_before: epochs the run had before this demo.
        dashboard_url: the Ray dashboard while it trained (None when nothing was trained).
        synthetic: the synthetic set written from the last checkpoint (``<store>/synthetic/<name>/``).
        generated: False when the set already held every held-out study and was reused.
        comparison: :func:`breastflow.generate.compare.compare_with_baselines` on the held-out studies.
        beats_both: per :data:`MODEL_METRICS` metric, whether the model beats both baselines
            (None when the figure is undefined, e.g. no lesion box in the held-out studies).
    """

    training: DemoTraining
    run: str
    checkpoints: list[str]
    epochs: int
    epochs_before: int
    dashboard_url: str | None
    synthetic: str
    generated: bool
    comparison: pd.DataFrame
    beats_both: dict[str, bool | None]


def beats_both_baselines(table: pd.DataFrame) -> dict[str, bool | None]:
    """Per metric of :data:`MODEL_METRICS`: does ``model`` beat ``identity`` and ``linear`` (strictly)?

    Args:
        table: rows ``model``, ``identity``, ``linear``; one column per metric.

    Returns:
        True / False per metric; None where a value is not finite.
    """
    out: dict[str, bool | None] = {}
    for metric, lower in MODEL_METRICS.items():
        model, *baselines = (float(table.loc[c, metric]) for c in ("model", "identity", "linear"))
        if not all(np.isfinite([model, *baselines])):
            out[metric] = None
        else:
            out[metric] = all(model < b if lower else model > b for b in baselines)
    return out


@contextmanager
def local_ray() -> Iterator[bool]:
    """A local Ray instance for the demo's training, shut down on exit, also on error.

    ``RAY_ADDRESS`` is ignored for the duration: the demo's store is a local folder
    that a remote cluster could not read. Workers' logs are not echoed to the
    terminal (``RAY_LOG_TO_DRIVER=0`` unless set; a failure's snippet still comes
    with the error). An instance already initialised in this process (a test's)
    is used and left running.

    Yields:
        True if Ray was started here.
    """
    from breastflow.environment import scoped_env
    from breastflow.train.ray_cluster import apply_ray_env, init_ray

    apply_ray_env()  # before Ray is imported
    # worker logs stay in Ray's session folder; the demo prints one line per epoch (read by Ray at import)
    quiet = {"RAY_ADDRESS": None, "RAY_LOG_TO_DRIVER": os.environ.get("RAY_LOG_TO_DRIVER", "0")}
    with scoped_env(quiet):
        import ray

        started = False
        try:
            started = init_ray()
            yield started
        finally:
            if started:
                ray.shutdown()


@contextmanager
def shared_ray(store: str, training: DemoTraining) -> Iterator[bool]:
    """One local Ray instance for the demo's training and selection, when the run still has epochs to train.

    A run that is already complete starts nothing here: selection then starts Ray itself
    only if a checkpoint still needs evaluating (stored evaluations are reused).

    Yields:
        True if Ray was started here.
    """
    from breastflow.train.checkpoint import epoch_of_dir, list_checkpoints

    run = training.train_run(store)
    done = list_checkpoints(run.run_uri)
    if done and (epoch_of_dir(done[-1]) or 0) >= run.total_epochs:
        yield False
        return
    with local_ray() as started:
        yield started


def train_demo_model(store: str, training: DemoTraining, notify: Callable[[str], None]) -> tuple[FollowedRun, int]:
    """Train (or continue, or reuse) the demo's run on Ray Train.

    Returns:
        The followed run and the epochs its checkpoints had before.

    Raises:
        What :func:`breastflow.train.follow.train_and_follow` raises.
    """
    from breastflow.train.checkpoint import epoch_of_dir, list_checkpoints
    from breastflow.train.follow import train_and_follow

    run = training.train_run(store)
    done = list_checkpoints(run.run_uri)
    before = (epoch_of_dir(done[-1]) or 0) if done else 0
    if before >= run.total_epochs:
        notify(f"run {run.run} already has {before} epochs ({run.total_epochs} planned): not retrained")
        return train_and_follow(run, notify=notify), before
    with local_ray():
        return train_and_follow(run, notify=notify, interval_s=5.0), before


def generate_held_out(store: str, checkpoint: str, catalog: pd.DataFrame, held_out: list[str], name: str,
                      model: str) -> bool:
    """Write ``post_1`` of the held-out studies into synthetic set ``name``, unless it holds them all already.

    Generates split by split (``val``, ``test``) with
    :func:`breastflow.generate.run.generate_synthetic`.

    Returns:
        True if generated now, False if the set was reused.
    """
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import generate_synthetic
    from breastflow.generate.synthetic import SyntheticSetError, read_synthetic_commits
    from breastflow.store.fs import StoreLocation

    try:
        present = {(r.study, r.series) for r in read_synthetic_commits(StoreLocation.from_url(store), name)}
    except SyntheticSetError:
        present = set()
    if {(s, POST1) for s in held_out} <= present:
        return False
    splits = sorted(set(catalog.loc[catalog["study"].isin(held_out), "split"]))
    for split in splits:
        generate_synthetic(GenerateConfig(checkpoint=checkpoint, store=store, split=GenerateSplit(split), name=name,
                                          model=model))
    return True


def run_model_step(store: str, catalog: pd.DataFrame, training: DemoTraining,
                   notify: Callable[[str], None], timings: dict[str, float]) -> ModelStep:
    """Train, generate the held-out ``post_1`` and compare it with the baselines (step 6 of the module docstring).

    Args:
        store: the demo's store; catalog: its catalog.
        training: the run's settings (``total_epochs`` > 0).
        notify: receives progress lines (Ray connected, one per epoch).
        timings: wall seconds of ``train``, ``generate`` and ``compare`` are added here.

    Raises:
        ValueError: the split holds no study out, or none in training.
        and what training, generation and comparison raise.
    """
    from breastflow.generate.compare import compare_with_baselines

    train, held_out = paired_studies(catalog)
    if not held_out or not train:
        raise ValueError(f"the split left {len(train)} training and {len(held_out)} held-out studies; "
                         "the model step needs both")
    start = time.perf_counter()
    followed, before = train_demo_model(store, training, notify)
    timings["train"] = time.perf_counter() - start
    result = followed.result
    if not result.checkpoints:
        raise RuntimeError(f"training run {result.run} ended without a checkpoint in {result.run_uri}")
    name = layout.check_name(f"{result.run}-e{result.epochs}", "synthetic set name")
    start = time.perf_counter()
    generated = generate_held_out(store, result.checkpoints[-1], catalog, held_out, name, training.model)
    timings["generate"] = time.perf_counter() - start
    start = time.perf_counter()
    table = compare_with_baselines(store, name, held_out, train, target=POST1)
    timings["compare"] = time.perf_counter() - start
    return ModelStep(training=training, run=result.run, checkpoints=list(result.checkpoints), epochs=result.epochs,
                     epochs_before=before, dashboard_url=followed.dashboard_url, synthetic=name, generated=generated,
                     comparison=table, beats_both=beats_both_baselines(table))
