"""The minimal runnable GAN family to copy when adding a new one (STYLE habit 1).

A paired image-to-image GAN in a few lines: a two-convolution generator, a
three-layer PatchGAN discriminator on ``(source, output)`` pairs, an
adversarial loss from :class:`~breastflow.models.enums.GanLoss` plus a pixel L1
term (pix2pix, Isola et al. 2017, eq. 4). Anchor: pytorch-CycleGAN-and-pix2pix
``models/template_model.py``.

To add a family: copy this file to ``breastflow/models/<family>/model.py``,
give it a config class and a registry name, import it in
``breastflow/models/__init__.py``, and add its rows to ``tests/models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from breastflow.data import keys
from breastflow.models import keys as loss_keys
from breastflow.models.base import GanModel
from breastflow.models.config import ModelConfig
from breastflow.models.enums import GanLoss
from breastflow.models.gan_losses import adversarial_loss
from breastflow.models.layers import init_weights, set_requires_grad
from breastflow.models.registry import MODELS
from breastflow.models.schedule import adam_with_decay


class TemplateConfig(ModelConfig):
    """Config of the template family.

    Attributes:
        in_channels: channels ``C`` of ``IMAGE``.
        out_channels: channels ``C'`` of ``TARGET`` and of the generator output.
        width: feature maps of the hidden layers.
        gan_loss: adversarial objective (``WGAN_GP`` is not offered: no penalty here).
        lambda_l1: weight of the pixel L1 term.
    """

    in_channels: int = Field(1, ge=1)
    out_channels: int = Field(1, ge=1)
    width: int = Field(8, ge=1)
    gan_loss: GanLoss = GanLoss.LSGAN
    lambda_l1: float = Field(10.0, ge=0)
    epochs: int = Field(1, ge=0)
    decay_epochs: int = Field(1, ge=0)


@MODELS.register("template")
class TemplateModel(GanModel):
    """Tiny paired GAN: ``IMAGE (B, C, H, W)`` -> ``TARGET (B, C', H, W)``.

    Args:
        config: a :class:`TemplateConfig`.

    Raises:
        ValueError: ``gan_loss`` is ``WGAN_GP`` (this family adds no gradient penalty).
    """

    name = "template"
    config_class = TemplateConfig

    def __init__(self, config: TemplateConfig) -> None:
        super().__init__(config)
        if config.gan_loss is GanLoss.WGAN_GP:
            raise ValueError("template: gan_loss wgan_gp needs a gradient penalty; use lsgan, vanilla or hinge")
        self.cfg = config
        w = config.width
        generator = nn.Sequential(
            nn.Conv2d(config.in_channels, w, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(w, config.out_channels, 3, padding=1), nn.Tanh(),
        )  # fmt: skip
        discriminator = nn.Sequential(
            nn.Conv2d(config.in_channels + config.out_channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w, 4, padding=1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, 1, 4, padding=1),
        )  # fmt: skip
        self.networks = {"generator": generator, "discriminator": discriminator}
        for network in self.networks.values():
            network.apply(init_weights)
        self.optimizers, self.schedulers = adam_with_decay(self.networks, config)

    @property
    def generator(self) -> nn.Module:
        return self.networks["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One generator then one discriminator step on ``batch[IMAGE]`` -> ``batch[TARGET]``."""
        source: Tensor = batch[keys.IMAGE]
        target: Tensor = batch[keys.TARGET]
        kind = self.cfg.gan_loss
        fake = self.generator(source)

        set_requires_grad(self.discriminator, False)
        g_adv = adversarial_loss(self.discriminator(torch.cat([source, fake], 1)), True, kind, for_discriminator=False)
        g_l1 = F.l1_loss(fake, target)
        g_total = g_adv + self.cfg.lambda_l1 * g_l1
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_total.backward()
        self.optimizers["generator"].step()

        set_requires_grad(self.discriminator, True)
        d_real = adversarial_loss(self.discriminator(torch.cat([source, target], 1)), True, kind, for_discriminator=True)
        d_fake = adversarial_loss(
            self.discriminator(torch.cat([source, fake.detach()], 1)), False, kind, for_discriminator=True
        )
        d_total = 0.5 * (d_real + d_fake)
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_total.backward()
        self.optimizers["discriminator"].step()
        self.step += 1
        return {
            loss_keys.G_ADV: g_adv.item(),
            loss_keys.G_L1: g_l1.item(),
            loss_keys.G_TOTAL: g_total.item(),
            loss_keys.D_REAL: d_real.item(),
            loss_keys.D_FAKE: d_fake.item(),
            loss_keys.D_TOTAL: d_total.item(),
            loss_keys.LR: self.optimizers["generator"].param_groups[0]["lr"],
        }

    @torch.no_grad()
    def generate(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """Generator output ``(B, C', H, W)`` in ``[-1, 1]`` for ``image (B, C, H, W)``; ``label`` is unused."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(image.to(self.device))
        finally:
            self.generator.train(was_training)
