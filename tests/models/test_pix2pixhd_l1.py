"""The optional pixel L1 term (pix2pix's reconstruction loss; not in paper 003, off by default)."""

from __future__ import annotations

import pytest
import torch

from breastflow.data import keys
from breastflow.models import build_model
from breastflow.models import keys as loss_keys
from model_helpers import TINY_OFF


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(2, 1, 32, 32, generator=generator) * 2 - 1
    target = torch.rand(2, 1, 32, 32, generator=generator) * 2 - 1
    return {keys.IMAGE: image, keys.TARGET: target}


def test_default_is_the_papers_objective_without_l1() -> None:
    assert build_model("pix2pixhd", TINY_OFF).config.lambda_l1 == 0.0


@pytest.mark.parametrize("weight", [1.0, 100.0])
def test_l1_term_enters_the_generator_total_with_its_weight(weight: float) -> None:
    batch = _batch()
    losses = {}
    for lam in (0.0, weight):
        torch.manual_seed(0)
        model = build_model("pix2pixhd", {**TINY_OFF, "lambda_l1": lam})
        losses[lam] = model.train_step(batch)
    plain, with_l1 = losses[0.0], losses[weight]
    # same seed, same first forward: the totals differ by exactly lambda * L1 of the first fake
    assert with_l1[loss_keys.G_TOTAL] - plain[loss_keys.G_TOTAL] == pytest.approx(
        weight * plain[loss_keys.G_L1], rel=1e-4)


def test_negative_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="lambda_l1"):
        build_model("pix2pixhd", {**TINY_OFF, "lambda_l1": -1})
