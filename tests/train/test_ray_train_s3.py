"""A real 2-worker CPU Ray Train run of a tiny pix2pixhd, checkpoints on a moto S3 endpoint on 127.0.0.1, then a resume.

One Ray instance and one S3 endpoint for the module; two TorchTrainer runs in all.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from train_helpers import SLICES, TINY_PIX2PIXHD, build_tiny_store

from breastflow.store.fs import StoreLocation
from breastflow.store.local_s3 import local_s3
from breastflow.train.checkpoint import (
    epoch_of_dir,
    load_checkpoint,
    read_checkpoint_state,
)
from breastflow.train.config import RUN_FILE, TrainRun
from breastflow.train.launch import launch_training
from breastflow.train.losses_log import read_losses
from breastflow.train.samples import HEADER_PX, tile_zoom

pytestmark = pytest.mark.integration
WORKERS, BATCH = 2, 2
BATCHES_PER_EPOCH = (3 * SLICES) // WORKERS // BATCH  # 12 train items, 2 ranks, batches of 2
LR = 2e-4


@pytest.fixture(scope="module")
def s3_store():
    with local_s3() as s3:
        s3.make_bucket("bf-train")
        yield build_tiny_store("s3://bf-train/store")


@pytest.fixture(scope="module")
def first_run(s3_store, ray_local):
    run = _run(s3_store, epochs=2, decay_epochs=1)
    return run, launch_training(run)


def _run(store: str, epochs: int, decay_epochs: int) -> TrainRun:
    return TrainRun(model="pix2pixhd", store=store, run="tiny",
                    model_options={**TINY_PIX2PIXHD, "epochs": epochs, "decay_epochs": decay_epochs, "lr": LR},
                    dataset_spec={"image_size": 32}, checkpoint_every=2, workers=WORKERS, batch_size=BATCH, seed=1,
                    samples=2)


def test_two_workers_write_every_kth_and_the_last_checkpoint_to_s3(first_run):
    run, result = first_run
    assert result.run_uri == "s3://bf-train/store/checkpoints/pix2pixhd/tiny"
    assert [epoch_of_dir(c) for c in result.checkpoints] == [2, 3]  # every 2 epochs, and the end
    assert all(c.startswith("s3://bf-train/store/checkpoints/pix2pixhd/tiny/epoch_") for c in result.checkpoints)
    assert result.epochs == 3 and result.dataset_version.startswith("dsv1:")
    assert np.isfinite(result.metrics["g_total"]) and result.metrics["epoch"] == 3

    model, meta = load_checkpoint(result.checkpoints[-1], expect_model="pix2pixhd",
                                  expect_dataset_version=result.dataset_version)
    assert (meta.epoch, meta.step) == (3, 3 * BATCHES_PER_EPOCH)
    assert meta.train_run["run"] == "tiny" and meta.train_run["workers"] == WORKERS
    assert model.generate(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)

    loc = StoreLocation.from_url(run.store)
    fs = loc.filesystem()
    for checkpoint in result.checkpoints:
        png = Image.open(io.BytesIO(fs.cat(checkpoint.removeprefix("s3://") + "/samples.png")))
        zoom = tile_zoom(32)
        assert png.size == (4 * 32 * zoom, HEADER_PX + 2 * 32 * zoom)  # pre | real | synthetic | |diff|, 2 rows
    assert fs.exists(loc.fs_path(run.run_dir, RUN_FILE))
    rows = read_losses(loc.join(run.run_dir, "losses.csv"), loc)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(np.isfinite(r["g_total"]) and np.isfinite(r["d_total"]) for r in rows)


def test_second_invocation_with_more_epochs_continues_the_run(first_run):
    run, first = first_run
    longer = _run(run.store, epochs=3, decay_epochs=2)
    result = launch_training(longer)
    assert [epoch_of_dir(c) for c in result.checkpoints] == [2, 3, 4, 5]
    assert result.checkpoints[:2] == first.checkpoints
    state = read_checkpoint_state(result.checkpoints[2])
    assert state["epoch"] == 4 and state["step"] == 4 * BATCHES_PER_EPOCH  # counters continued, not restarted
    # the new schedule (3 constant + 2 decay) at epoch 4: lr * (1 - (4 - 3) / 2)
    lr = state["model_state"]["optimizers"]["generator"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(LR * 0.5)
    loc = StoreLocation.from_url(run.store)
    assert [r["epoch"] for r in read_losses(loc.join(run.run_dir, "losses.csv"), loc)] == [1, 2, 3, 4, 5]
