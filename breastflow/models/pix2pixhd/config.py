"""Typed configuration of the ``pix2pixhd`` family (defaults: paper 003 sec. 3.2.2 and NVIDIA pix2pixHD's options)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from breastflow.models.config import ModelConfig
from breastflow.models.enums import GanLoss, GeneratorKind, Norm, Padding, Perceptual


class Pix2PixHDConfig(ModelConfig):
    """Pix2PixHD options (pix2pixHD option name in brackets).

    Attributes:
        input_nc: channels of ``IMAGE``; 1 = grey pre-contrast, natively (no RGB replication).
        output_nc: channels of the output; 1 = one post-contrast phase, 3 = phases 1-3 jointly (paper 003 sec. 4.4).
        generator: ``GLOBAL`` (``--netG global``) or ``LOCAL`` (global + local enhancer(s), pix2pixHD sec. 3.2).
        ngf: feature maps of the outermost generator layer (``--ngf``); with ``LOCAL`` the global
            generator inside runs at ``ngf * 2**n_local_enhancers``, as pix2pixHD.
        n_downsample_global: stride-2 downsamplings of the global generator (``--n_downsample_global``).
        n_blocks_global: residual blocks of the global generator (``--n_blocks_global``).
        n_local_enhancers: local enhancers for ``LOCAL`` (``--n_local_enhancers``).
        n_blocks_local: residual blocks per local enhancer (``--n_blocks_local``).
        norm: normalisation of G and D (``--norm``; instance norm without affine parameters).
        padding: padding of the generator convolutions (pix2pixHD: reflection).
        ndf: feature maps of the first discriminator layer (``--ndf``).
        n_layers_d: stride-2 layers of each PatchGAN (``--n_layers_D``).
        num_d: discriminator scales (``--num_D``); scale ``k`` sees the pair average-pooled ``k`` times.
        gan_loss: adversarial objective, ``LSGAN`` (paper 003 eq. 3) or ``VANILLA``/``HINGE``.
        lambda_adv: weight of the adversarial terms (paper 003: 1).
        lambda_fm: weight of discriminator feature matching (``--lambda_feat``, paper 003: 10); 0 turns it off.
        perceptual: ``ON`` uses the VGG19 perceptual loss (needs ``vgg_weights``); ``OFF`` does not.
        lambda_perceptual: weight of the perceptual term (paper 003: 10).
        vgg_weights: local file holding a torchvision ``vgg19`` state dict (keys ``features.N.weight``).
        lambda_l1: weight of a pixel L1 term between synthetic and real target. Not part of
            paper 003 eq. 3 (default 0: the paper's objective). It is pix2pix's reconstruction
            term (Isola et al. 2017, lambda 100); breastflow offers it, explicitly and recorded in
            the run config, for runs that cannot use the VGG19 perceptual term (no weights offline),
            where feature matching alone gives too weak a reconstruction signal (docs/train_results.md).
    """

    input_nc: int = Field(1, ge=1)
    output_nc: int = Field(1, ge=1)
    generator: GeneratorKind = GeneratorKind.GLOBAL
    ngf: int = Field(64, ge=1)
    n_downsample_global: int = Field(4, ge=0)
    n_blocks_global: int = Field(9, ge=0)
    n_local_enhancers: int = Field(1, ge=1)
    n_blocks_local: int = Field(3, ge=0)
    norm: Norm = Norm.INSTANCE
    padding: Padding = Padding.REFLECT
    ndf: int = Field(64, ge=1)
    n_layers_d: int = Field(3, ge=1)
    num_d: int = Field(2, ge=1)
    gan_loss: GanLoss = GanLoss.LSGAN
    lambda_adv: float = Field(1.0, ge=0)
    lambda_fm: float = Field(10.0, ge=0)
    perceptual: Perceptual = Perceptual.ON
    lambda_perceptual: float = Field(10.0, ge=0)
    vgg_weights: Path | None = None
    lambda_l1: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _supported_loss(self) -> Pix2PixHDConfig:
        if self.gan_loss is GanLoss.WGAN_GP:
            raise ValueError("pix2pixhd supports gan_loss lsgan (paper 003), vanilla or hinge, not wgan_gp")
        return self

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (all downsamplings of the generator)."""
        local = self.n_local_enhancers if self.generator is GeneratorKind.LOCAL else 0
        return 2 ** (self.n_downsample_global + local)
