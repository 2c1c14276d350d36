"""The ``pix2pixhd`` family: paired pre -> post-contrast translation (paper 003 sec. 3.2.2, Wang et al. 2018).

Code names -> paper 003 eq. 3: ``g_adv`` = ``sum_k L_adv(D_k)``, ``g_feature_matching`` =
``sum_k L_fm(D_k)``, ``g_perceptual`` = ``L_per`` (each before its lambda);
``g_total`` = ``L_GAN``. ``g_l1`` is a monitor (no gradient), as pix2pixHD has no pixel term.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from breastflow.data import keys
from breastflow.models import keys as loss_keys
from breastflow.models.base import GanModel
from breastflow.models.enums import GeneratorKind, Perceptual
from breastflow.models.layers import init_weights, set_requires_grad
from breastflow.models.pix2pixhd.config import Pix2PixHDConfig
from breastflow.models.pix2pixhd.losses import (
    VggPerceptualLoss,
    feature_matching_loss,
    multiscale_adversarial_loss,
)
from breastflow.models.pix2pixhd.networks import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
)
from breastflow.models.pix2pixhd.vgg import load_vgg19_features
from breastflow.models.registry import MODELS
from breastflow.models.schedule import adam_with_decay


def build_generator(config: Pix2PixHDConfig) -> nn.Module:
    """The generator the config asks for (``GlobalGenerator`` or ``LocalEnhancer``), pix2pixHD-initialised."""
    if config.generator is GeneratorKind.GLOBAL:
        net: nn.Module = GlobalGenerator(
            config.input_nc, config.output_nc, config.ngf, config.n_downsample_global, config.n_blocks_global,
            config.norm, config.padding,
        )  # fmt: skip
    else:
        net = LocalEnhancer(
            config.input_nc, config.output_nc, config.ngf, config.n_downsample_global, config.n_blocks_global,
            config.n_local_enhancers, config.n_blocks_local, config.norm, config.padding,
        )  # fmt: skip
    net.apply(init_weights)
    return net


def build_discriminator(config: Pix2PixHDConfig) -> MultiscaleDiscriminator:
    """The multiscale discriminator on ``(source, image)`` pairs (``input_nc + output_nc`` channels)."""
    net = MultiscaleDiscriminator(
        config.input_nc + config.output_nc, config.ndf, config.n_layers_d, config.num_d, config.norm
    )
    net.apply(init_weights)
    return net


@MODELS.register("pix2pixhd")
class Pix2PixHD(GanModel):
    """Pix2PixHD: ``IMAGE (B, input_nc, H, W)`` pre-contrast -> ``TARGET (B, output_nc, H, W)`` post-contrast.

    Networks ``generator`` and ``discriminator`` (multiscale); one Adam per
    network (``lr``, ``(beta1, beta2)``) with constant-then-linear-decay LR.
    ``H, W`` must be multiples of ``config.size_multiple`` (16 for the defaults).

    Args:
        config: a :class:`Pix2PixHDConfig`.

    Raises:
        breastflow.models.pix2pixhd.vgg.MissingWeightsError: ``perceptual`` is ``ON`` and
            ``vgg_weights`` is unset or no such file.
        ValueError: ``vgg_weights`` is not a torchvision ``vgg19`` state dict.
    """

    name = "pix2pixhd"
    config_class = Pix2PixHDConfig
    local_config_fields = frozenset({"vgg_weights"})

    def __init__(self, config: Pix2PixHDConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.perceptual: VggPerceptualLoss | None = None
        if config.perceptual is Perceptual.ON:  # first: fail before building large networks
            self.perceptual = VggPerceptualLoss(load_vgg19_features(config.vgg_weights))
        self.networks = {"generator": build_generator(config), "discriminator": build_discriminator(config)}
        self.optimizers, self.schedulers = adam_with_decay(self.networks, config)

    @property
    def generator(self) -> nn.Module:
        return self.networks["generator"]

    @property
    def discriminator(self) -> nn.Module:
        return self.networks["discriminator"]

    def frozen_modules(self) -> dict[str, nn.Module]:
        return {} if self.perceptual is None else {"perceptual": self.perceptual}

    def _check_image(self, image: Tensor, what: str, channels: int) -> None:
        m = self.cfg.size_multiple
        if image.dim() != 4 or image.shape[1] != channels:
            raise ValueError(f"{what} must be (B, {channels}, H, W), got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % m or w % m or min(h, w) < 2 * m:
            raise ValueError(
                f"{what} size {h}x{w}: pix2pixhd with these options needs H and W multiples of {m} and >= {2 * m} "
                "(set image_size accordingly or lower n_downsample_global)"
            )

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One generator and one discriminator step, both with the same D (NVIDIA ``pix2pixHD_model.forward``).

        Args:
            batch: ``IMAGE (B, input_nc, H, W)`` and ``TARGET (B, output_nc, H, W)`` in ``[-1, 1]``, on the model's device.

        Returns:
            ``g_adv``, ``g_feature_matching``, ``g_perceptual``, ``g_total``, ``g_l1``, ``d_real``,
            ``d_fake``, ``d_total`` and ``lr``.

        Raises:
            KeyError: ``IMAGE`` or ``TARGET`` missing.
            ValueError: wrong channels or a size the generator cannot take.
        """
        for key in (keys.IMAGE, keys.TARGET):
            if key not in batch:
                raise KeyError(f"pix2pixhd needs batch[{key!r}] (paired data); batch has {sorted(batch)}")
        source: Tensor = batch[keys.IMAGE]
        target: Tensor = batch[keys.TARGET]
        self._check_image(source, "IMAGE", self.cfg.input_nc)
        self._check_image(target, "TARGET", self.cfg.output_nc)
        cfg = self.cfg
        fake = self.generator(source)

        # D on the detached fake and the real pair (with D gradients), then on the fake for G (without).
        pred_fake_d = self.discriminator(torch.cat([source, fake.detach()], 1))
        pred_real = self.discriminator(torch.cat([source, target], 1))
        set_requires_grad(self.discriminator, False)
        try:
            pred_fake = self.discriminator(torch.cat([source, fake], 1))
        finally:
            set_requires_grad(self.discriminator, True)

        g_adv = multiscale_adversarial_loss(pred_fake, True, cfg.gan_loss, for_discriminator=False)
        zero = torch.zeros((), device=fake.device)
        g_fm = feature_matching_loss(pred_fake, pred_real, cfg.n_layers_d) if cfg.lambda_fm > 0 else zero
        g_per = self.perceptual(fake, target) if self.perceptual is not None else zero
        g_total = cfg.lambda_adv * g_adv + cfg.lambda_fm * g_fm + cfg.lambda_perceptual * g_per
        if cfg.lambda_l1 > 0:  # pix2pix's reconstruction term; not in paper 003 (off by default)
            g_total = g_total + cfg.lambda_l1 * F.l1_loss(fake, target)
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_total.backward()
        self.optimizers["generator"].step()

        d_real = multiscale_adversarial_loss(pred_real, True, cfg.gan_loss, for_discriminator=True)
        d_fake = multiscale_adversarial_loss(pred_fake_d, False, cfg.gan_loss, for_discriminator=True)
        d_total = 0.5 * (d_real + d_fake)
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        d_total.backward()
        self.optimizers["discriminator"].step()
        self.step += 1
        with torch.no_grad():
            g_l1 = F.l1_loss(fake, target)
        return {
            loss_keys.G_ADV: g_adv.item(),
            loss_keys.G_FM: g_fm.item(),
            loss_keys.G_PERCEPTUAL: g_per.item(),
            loss_keys.G_TOTAL: g_total.item(),
            loss_keys.G_L1: g_l1.item(),
            loss_keys.D_REAL: d_real.item(),
            loss_keys.D_FAKE: d_fake.item(),
            loss_keys.D_TOTAL: d_total.item(),
            loss_keys.LR: self.optimizers["generator"].param_groups[0]["lr"],
        }

    @torch.no_grad()
    def generate(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """Synthetic post-contrast ``(B, output_nc, H, W)`` in ``[-1, 1]`` for pre-contrast ``image (B, input_nc, H, W)``.

        Args:
            image: the pre-contrast batch.
            label: unused (Pix2PixHD is conditioned on the image only).

        Raises:
            ValueError: wrong channels or size.
        """
        self._check_image(image, "image", self.cfg.input_nc)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(image.to(self.device))
        finally:
            self.generator.train(was_training)
