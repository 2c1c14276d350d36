"""Pix2PixHD's generator losses, paper 003 eq. 3:

    L_G = lambda_adv * sum_k L_adv(D_k) + lambda_fm * sum_k L_fm(D_k) + lambda_per * L_per

with ``L_fm`` pix2pixHD eq. 4 (L1 between the discriminators' intermediate
features of real and generated pairs, weighted ``4 / (n_layers + 1) / num_D`` as
NVIDIA pix2pixHD's ``pix2pixHD_model.py``) and ``L_per`` the VGG19 perceptual
loss with pix2pixHD's layer weights ``1/32, 1/16, 1/8, 1/4, 1`` (``VGGLoss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from breastflow.models.enums import GanLoss
from breastflow.models.gan_losses import adversarial_loss
from breastflow.models.pix2pixhd.vgg import Vgg19Features

VGG_LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def multiscale_adversarial_loss(
    predictions: list[list[Tensor]], target_is_real: bool, kind: GanLoss, *, for_discriminator: bool
) -> Tensor:
    """Sum over scales of the adversarial term on each scale's last output (the patch logits).

    Args:
        predictions: per scale, the feature list of :class:`~breastflow.models.pix2pixhd.networks.MultiscaleDiscriminator`.
        target_is_real: judge real (True) or generated (False).
        kind: adversarial objective.
        for_discriminator: discriminator or generator form (hinge).
    """
    return sum(
        (adversarial_loss(scale[-1], target_is_real, kind, for_discriminator=for_discriminator) for scale in predictions),
        start=torch.zeros((), device=predictions[0][-1].device),
    )


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]], n_layers: int) -> Tensor:
    """pix2pixHD eq. 4: ``sum_k sum_i 4/(n_layers+1) * 1/num_D * L1(D_k^i(x, G(x)), D_k^i(x, y))``.

    The real features are detached; the logits (last output) are not matched.

    Args:
        fake: per scale, the discriminator features of the generated pair.
        real: the same for the real pair.
        n_layers: the PatchGANs' ``n_layers``.

    Raises:
        ValueError: if the two lists differ in scales or depth.
    """
    if len(fake) != len(real) or any(len(f) != len(r) for f, r in zip(fake, real, strict=True)):
        raise ValueError("fake and real discriminator outputs differ in number of scales or layers")
    weight = 4.0 / (n_layers + 1) / len(fake)
    total = torch.zeros((), device=fake[0][0].device)
    for f_scale, r_scale in zip(fake, real, strict=True):
        for f, r in zip(f_scale[:-1], r_scale[:-1], strict=True):
            total = total + weight * F.l1_loss(f, r.detach())
    return total


class VggPerceptualLoss(nn.Module):
    """pix2pixHD's ``VGGLoss`` for grey images: ``sum_l w_l * L1(VGG_l(G(x)), VGG_l(y))``.

    Each channel of the ``[-1, 1]`` images is one grey image (a post-contrast
    phase): it is replicated to 3 channels, mapped to ``[0, 1]`` and
    ImageNet-normalised here, and only here; channels are averaged.

    Args:
        vgg: the loaded VGG19 trunk (frozen).

    Shapes: ``fake``, ``real`` ``(B, C', H, W)`` in ``[-1, 1]``; ``H, W >= 16``.
    """

    def __init__(self, vgg: Vgg19Features) -> None:
        super().__init__()
        self.vgg = vgg
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _as_imagenet(self, x: Tensor) -> Tensor:
        grey = x.reshape(-1, 1, *x.shape[-2:])
        return ((grey.expand(-1, 3, -1, -1) + 1.0) / 2.0 - self.mean) / self.std

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        fake_features = self.vgg(self._as_imagenet(fake))
        with torch.no_grad():
            real_features = self.vgg(self._as_imagenet(real))
        total = torch.zeros((), device=fake.device)
        for weight, f, r in zip(VGG_LAYER_WEIGHTS, fake_features, real_features, strict=True):
            total = total + weight * F.l1_loss(f, r)
        return total
