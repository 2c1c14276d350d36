"""A Ray Train worker killed mid-run: Ray restarts the group, it resumes from the last checkpoint, the run ends as planned.

Slow (two worker-group starts, a dozen epochs): run with ``-m slow``. The kill
comes well after a checkpoint report (Ray polls reports every 2 s; a worker that
dies sooner can lose that checkpoint, see docs/train.md).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest
from train_helpers import TINY_PIX2PIXHD, build_tiny_store

from breastflow.train.checkpoint import (
    checkpoint_dir_name,
    epoch_of_dir,
    list_checkpoints,
)
from breastflow.train.config import TrainRun
from breastflow.train.launch import launch_training
from breastflow.train.losses_log import read_losses

pytestmark = [pytest.mark.slow, pytest.mark.integration]
EPOCHS, EVERY = 12, 2


def _train_workers() -> list[psutil.Process]:
    """The Ray Train worker processes of this test's Ray node (descendants of its raylet only)."""
    import ray._private.worker as ray_worker

    raylet = ray_worker._global_node.all_processes["raylet"][0].process.pid
    found = []
    for child in psutil.Process(raylet).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "RayTrainWorker" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # exited meanwhile
            continue
    return found


def test_killed_worker_resumes_and_the_run_ends_with_the_planned_epochs(tmp_path, ray_local):
    store = build_tiny_store(str(tmp_path / "store"))
    run = TrainRun(model="pix2pixhd", store=store, run="kill",
                   model_options={**TINY_PIX2PIXHD, "epochs": EPOCHS // 2, "decay_epochs": EPOCHS // 2},
                   dataset_spec={"image_size": 32}, checkpoint_every=EVERY, workers=2, batch_size=2, max_failures=2)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=launch_training(run)), daemon=True)
    thread.start()
    first = f"{run.run_uri}/{checkpoint_dir_name(EVERY)}/state.pt"
    while thread.is_alive() and not os.path.exists(first):
        time.sleep(0.5)
    assert os.path.exists(first), "the run ended before its first checkpoint"
    first_mtime = os.stat(first).st_mtime_ns
    time.sleep(4)  # well after the report (polled every 2 s), so the checkpoint is registered
    victims = _train_workers()
    done_before_kill = [epoch_of_dir(c) for c in list_checkpoints(run.run_uri)]
    assert victims and EPOCHS not in done_before_kill, "nothing left to kill: the run was already ending"
    os.kill(victims[-1].pid, signal.SIGKILL)
    before = {p.pid for p in victims}
    replaced = False
    while thread.is_alive() and not replaced:  # a new worker group starts (and resumes) after the failure
        replaced = any(p.pid not in before for p in _train_workers())
        time.sleep(0.5)
    thread.join(timeout=1800)
    assert replaced, "Ray never started a new worker group after the kill"

    result = outcome["result"]
    assert result.epochs == EPOCHS
    assert [epoch_of_dir(c) for c in result.checkpoints] == list(range(EVERY, EPOCHS + 1, EVERY))
    assert os.stat(first).st_mtime_ns == first_mtime  # resumed from it, not retrained from scratch
    assert not psutil.pid_exists(victims[-1].pid) or victims[-1].status() == psutil.STATUS_ZOMBIE
    assert [r["epoch"] for r in read_losses(f"{run.run_uri}/losses.csv")] == list(range(1, EPOCHS + 1))
