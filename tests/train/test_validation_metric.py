"""The validation metric of the training engine (``TrainRun.validate_every``), without Ray."""

from __future__ import annotations

import math

import pytest
import torch
from train_helpers import SLICES, TINY_PIX2PIXHD, build_tiny_store

from breastflow.models import build_model
from breastflow.store.splits import Split
from breastflow.train.config import TrainRun
from breastflow.train.launch import preflight
from breastflow.train.validation import (
    VAL_MAE,
    VAL_PSNR,
    ValidationError,
    Validator,
    paired_metrics,
    subset_indices,
)
from breastflow.train.worker import _validation_due


@pytest.fixture(scope="module")
def val_store(tmp_path_factory) -> str:
    """Two train studies and two val studies (4 slices, 24x24)."""
    from data_store_builder import PhantomStudy, build_store, patients
    url = str(tmp_path_factory.mktemp("val-store"))
    box = (1, 2, 8, 13, 9, 14)
    train, val = patients(Split.TRAIN, 2), patients(Split.VAL, 2)
    studies = [PhantomStudy(f"stu-{k}", p, shape=(SLICES, 24, 24), phases=("pre", "post_1"), box=box, seed=k)
               for k, p in enumerate(train)]
    studies += [PhantomStudy(f"val-{k}", p, shape=(SLICES, 24, 24), phases=("pre", "post_1"), box=box, seed=10 + k)
                for k, p in enumerate(val)]
    build_store(url, studies)
    return url


def test_paired_metrics_known_values():
    real = torch.ones(2, 1, 4, 4)
    scores = paired_metrics(torch.zeros(2, 1, 4, 4), real)
    assert scores[VAL_MAE] == pytest.approx(1.0)
    assert scores[VAL_PSNR] == pytest.approx(10 * math.log10(4.0))  # data range 2, MSE 1
    half = torch.zeros(2, 1, 4, 4)
    half[1] = 1.0  # second image exact: its PSNR is infinite and so is the mean
    assert paired_metrics(half, real)[VAL_MAE] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="does not match"):
        paired_metrics(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 8, 8))


def test_subset_is_evenly_spread_and_fixed():
    assert subset_indices(3, 8) == [0, 1, 2]
    assert subset_indices(16, 4) == [0, 4, 8, 12]


@pytest.mark.parametrize(("epoch", "every", "total", "due"),
                         [(1, 0, 3, False), (1, 1, 3, True), (1, 2, 3, False), (2, 2, 3, True), (3, 2, 3, True)])
def test_validation_is_due_every_k_epochs_and_after_the_last(epoch, every, total, due):
    assert _validation_due(epoch, every, total) is due


def test_validator_scores_the_generator_on_val_slices_only(val_store):
    validator = Validator(val_store, "paired_phases", {"targets": ["post_1"]}, items=5)
    assert len(validator.keys) == 5 and all(k.startswith("val-") for k in validator.keys)
    torch.manual_seed(0)
    model = build_model("pix2pixhd", TINY_PIX2PIXHD)
    model.train()
    scores = validator.evaluate(model)
    assert all(net.training for net in model.networks.values())  # mode restored
    model.eval()
    with torch.no_grad():
        expected = (model.generate(validator.image).float() - validator.target).abs().mean().item()
    assert scores[VAL_MAE] == pytest.approx(expected, rel=1e-6)
    assert Validator(val_store, "paired_phases", {"targets": ["post_1"]}, items=5).keys == validator.keys
    assert validator.evaluate(model) == scores  # deterministic: same subset, no augmentation


def test_validation_ignores_the_training_augmentation(val_store):
    spec = {"targets": ["post_1"], "augment": {"rot90_p": 1.0}}
    plain = Validator(val_store, "paired_phases", {"targets": ["post_1"]}, items=4)
    augmented = Validator(val_store, "paired_phases", spec, items=4)
    assert torch.equal(plain.target, augmented.target)


def test_preflight_refuses_validation_without_val_studies(tmp_path):
    store = build_tiny_store(str(tmp_path / "store"))  # train and test studies only
    run = TrainRun(model="pix2pixhd", model_options={**TINY_PIX2PIXHD, "epochs": 1, "decay_epochs": 0},
                   store=store, run="r1", validate_every=1)
    with pytest.raises(ValidationError, match=r"val split.*no val studies.*validate_every=0"):
        preflight(run)
    assert preflight(run.model_copy(update={"validate_every": 0}))  # the dataset version: off is fine
