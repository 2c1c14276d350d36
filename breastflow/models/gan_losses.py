"""Adversarial objectives for every :class:`~breastflow.models.enums.GanLoss`, and the WGAN-GP penalty.

Each function takes the raw discriminator/critic output (no sigmoid: the
vanilla loss uses ``binary_cross_entropy_with_logits``, the numerically stable
form of pix2pixHD's ``use_sigmoid`` + ``BCELoss``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from breastflow.models.enums import GanLoss


def adversarial_loss(pred: Tensor, target_is_real: bool, kind: GanLoss, *, for_discriminator: bool) -> Tensor:
    """The adversarial term for one discriminator output.

    The discriminator minimises it with ``target_is_real`` true for real and
    false for generated samples; the generator minimises it on generated
    samples with ``target_is_real=True`` and ``for_discriminator=False``.

    Args:
        pred: discriminator output of any shape, e.g. PatchGAN logits ``(B, 1, h, w)``.
        target_is_real: whether ``pred`` should be judged real.
        kind: the objective.
        for_discriminator: hinge and Wasserstein use a different generator form.

    Returns:
        A scalar tensor (mean over all elements).
    """
    if kind is GanLoss.LSGAN:  # Mao et al. 2017: (D(x) - 1)^2 and D(G(z))^2
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.mse_loss(pred, target)
    if kind is GanLoss.VANILLA:  # Goodfellow et al. 2014, paper 003 eq. 2 (non-saturating G)
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred, target)
    if kind is GanLoss.HINGE:
        if not for_discriminator:
            return -pred.mean()
        return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
    if kind is GanLoss.WGAN_GP:  # the critic maximises D(real) - D(fake)
        return -pred.mean() if target_is_real else pred.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; valid: {[k.value for k in GanLoss]}")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on random interpolates (Gulrajani et al. 2017, eq. 3).

    Args:
        critic: maps a batch ``(B, C, H, W)`` to scores ``(B, ...)``.
        real: real batch ``(B, C, H, W)``.
        fake: generated batch of the same shape (detached by this function).

    Returns:
        The scalar penalty (multiply by the family's ``lambda_gp``, usually 10).

    Raises:
        ValueError: if ``real`` and ``fake`` differ in shape.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
