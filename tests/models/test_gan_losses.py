"""Adversarial objectives, WGAN-GP penalty and pix2pixHD's multiscale/feature-matching losses on known values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from breastflow.models.enums import GanLoss
from breastflow.models.gan_losses import adversarial_loss, gradient_penalty
from breastflow.models.pix2pixhd.losses import feature_matching_loss, multiscale_adversarial_loss

PRED = torch.tensor([0.5, -1.0, 2.0])
SP = lambda v: math.log1p(math.exp(v))

CASES = [
    # (kind, target_is_real, for_discriminator, expected mean)
    (GanLoss.LSGAN, True, True, ((0.5 - 1) ** 2 + (-2) ** 2 + 1**2) / 3),
    (GanLoss.LSGAN, False, True, (0.25 + 1 + 4) / 3),
    (GanLoss.LSGAN, True, False, ((0.5 - 1) ** 2 + (-2) ** 2 + 1**2) / 3),
    (GanLoss.VANILLA, True, True, (SP(-0.5) + SP(1.0) + SP(-2.0)) / 3),
    (GanLoss.VANILLA, False, True, (SP(0.5) + SP(-1.0) + SP(2.0)) / 3),
    (GanLoss.HINGE, True, True, (0.5 + 2.0 + 0.0) / 3),
    (GanLoss.HINGE, False, True, (1.5 + 0.0 + 3.0) / 3),
    (GanLoss.HINGE, True, False, -(0.5 - 1.0 + 2.0) / 3),
    (GanLoss.WGAN_GP, True, True, -(1.5 / 3)),
    (GanLoss.WGAN_GP, False, True, 1.5 / 3),
    (GanLoss.WGAN_GP, True, False, -(1.5 / 3)),
]


@pytest.mark.parametrize(("kind", "real", "for_d", "expected"), CASES)
def test_adversarial_loss_values(kind: GanLoss, real: bool, for_d: bool, expected: float) -> None:
    assert adversarial_loss(PRED, real, kind, for_discriminator=for_d).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_of_a_linear_critic() -> None:
    """For D(x) = <w, x> the gradient is w everywhere: penalty (||w|| - 1)^2."""
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    critic = lambda x: (x * w).flatten(1).sum(1)
    real, fake = torch.randn(4, 2, 1, 1), torch.randn(4, 2, 1, 1)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5.0 - 1.0) ** 2)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, real, fake[:2])


def test_gradient_penalty_backpropagates_to_the_critic() -> None:
    critic = nn.Conv2d(1, 1, 3)
    gradient_penalty(lambda x: critic(x).flatten(1).sum(1), torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)).backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def _features(value: float, num_d: int, n_layers: int) -> list[list[torch.Tensor]]:
    return [[torch.full((1, 2, 3, 3), value) for _ in range(n_layers + 2)] for _ in range(num_d)]


@pytest.mark.parametrize(("num_d", "n_layers"), [(2, 3), (3, 2), (1, 1)])
def test_feature_matching_weights(num_d: int, n_layers: int) -> None:
    """pix2pixHD weights 4/(n_layers+1)/num_D over the n_layers+1 intermediate maps: unit L1 everywhere sums to 4."""
    fake, real = _features(1.0, num_d, n_layers), _features(0.0, num_d, n_layers)
    for scale in fake:  # the logits are not matched
        scale[-1] = torch.full_like(scale[-1], 100.0)
    assert feature_matching_loss(fake, real, n_layers).item() == pytest.approx(4.0)


def test_feature_matching_rejects_mismatched_lists() -> None:
    with pytest.raises(ValueError, match="scales or layers"):
        feature_matching_loss(_features(0, 2, 3), _features(0, 1, 3), 3)


def test_multiscale_adversarial_sums_the_scales_logits() -> None:
    preds = [[torch.zeros(1), torch.full((1, 1, 2, 2), 0.0)], [torch.zeros(1), torch.full((1, 1, 2, 2), 3.0)]]
    # LSGAN, real target: (0-1)^2 + (3-1)^2
    assert multiscale_adversarial_loss(preds, True, GanLoss.LSGAN, for_discriminator=True).item() == pytest.approx(5.0)
