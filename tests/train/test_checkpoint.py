"""Checkpoint files without Ray: whole state round trip, RNG states, clear errors for the wrong checkpoint."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from breastflow.data import keys
from breastflow.models import build_model
from breastflow.train.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    capture_rng,
    checkpoint_dir_name,
    list_checkpoints,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)

VERSION = "dsv1:" + "a" * 64
RUN = {"run": "r1", "model": "template"}


def _trained_template():
    model = build_model("template", {"width": 4, "epochs": 1, "decay_epochs": 2})
    torch.manual_seed(0)
    batch = {keys.IMAGE: torch.rand(2, 1, 16, 16) * 2 - 1, keys.TARGET: torch.rand(2, 1, 16, 16) * 2 - 1}
    model.train_step(batch)
    model.end_epoch()
    model.train_step(batch)
    model.end_epoch()
    return model


def test_round_trip_restores_networks_optimisers_schedulers_and_counters(tmp_path):
    model = _trained_template()
    folder = tmp_path / "run" / checkpoint_dir_name(model.epoch)
    save_checkpoint(folder, model, VERSION, RUN)
    loaded, meta = load_checkpoint(folder, expect_model="template", expect_dataset_version=VERSION)
    assert (meta.model, meta.epoch, meta.step, meta.dataset_version) == ("template", 2, 2, VERSION)
    assert meta.train_run == RUN
    for name, net in model.networks.items():
        for (k, a), (_, b) in zip(net.state_dict().items(), loaded.networks[name].state_dict().items(), strict=True):
            assert torch.equal(a, b), (name, k)
    assert loaded.schedulers["generator"].last_epoch == model.schedulers["generator"].last_epoch == 2
    assert loaded.optimizers["generator"].param_groups[0]["lr"] == model.optimizers["generator"].param_groups[0]["lr"]
    assert loaded.optimizers["generator"].param_groups[0]["lr"] < model.config.lr  # the decay was restored
    assert list_checkpoints(str(tmp_path / "run")) == [str(folder)]


def test_rng_states_round_trip():
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    state = capture_rng()
    first = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    restore_rng(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c", _trained_template(), VERSION, RUN)
    with pytest.raises(CheckpointMismatchError, match=r"holds model 'template', not 'pix2pixhd'"):
        load_checkpoint(tmp_path / "c", expect_model="pix2pixhd")


def test_checkpoint_of_another_dataset_version_is_a_clear_error(tmp_path):
    save_checkpoint(tmp_path / "c", _trained_template(), VERSION, RUN)
    other = "dsv1:" + "b" * 64
    with pytest.raises(CheckpointMismatchError, match=rf"dataset version {VERSION}.*has version {other}"):
        load_checkpoint(tmp_path / "c", expect_dataset_version=other)


@pytest.mark.parametrize("content, match", [(None, "no checkpoint at"), (b"not a torch file", "not a breastflow")])
def test_missing_or_foreign_file_is_a_clear_error(tmp_path, content, match):
    folder = tmp_path / "c"
    folder.mkdir()
    if content is not None:
        (folder / "state.pt").write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(folder)


def test_list_checkpoints_orders_by_epoch_and_skips_incomplete(tmp_path):
    model = _trained_template()
    for epoch in (10, 2):
        save_checkpoint(tmp_path / checkpoint_dir_name(epoch), model, VERSION, RUN)
    (tmp_path / checkpoint_dir_name(12)).mkdir()  # upload not finished: no state.pt
    (tmp_path / "losses.csv").write_text("epoch\n")
    assert [p.rsplit("/", 1)[-1] for p in list_checkpoints(str(tmp_path))] == ["epoch_000002", "epoch_000010"]
    assert list_checkpoints(str(tmp_path / "missing")) == []
