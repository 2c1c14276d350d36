"""Choices shared by the GAN families (STYLE habit 5: enums, not free strings or exclusive booleans)."""

from __future__ import annotations

from enum import Enum


class GanLoss(str, Enum):
    """Adversarial objective.

    * ``LSGAN``: least squares (Mao et al. 2017), the pix2pixHD default and paper 003 eq. 3.
    * ``VANILLA``: the original non-saturating cross entropy (Goodfellow et al. 2014, paper 003 eq. 2).
    * ``WGAN_GP``: Wasserstein critic with gradient penalty (Gulrajani et al. 2017); the
      penalty is added by the family (see :func:`breastflow.models.gan_losses.gradient_penalty`).
    * ``HINGE``: hinge loss (Lim & Ye 2017).
    """

    LSGAN = "lsgan"
    VANILLA = "vanilla"
    WGAN_GP = "wgan_gp"
    HINGE = "hinge"


class Norm(str, Enum):
    """Normalisation layer. ``INSTANCE`` has no affine parameters, as pix2pixHD's ``get_norm_layer``."""

    INSTANCE = "instance"
    BATCH = "batch"
    NONE = "none"


class Padding(str, Enum):
    """Spatial padding of the generators' convolutions."""

    REFLECT = "reflect"
    ZERO = "zero"
    REPLICATE = "replicate"


class Perceptual(str, Enum):
    """Whether the VGG19 perceptual loss term is used (``OFF`` needs no weight file)."""

    ON = "on"
    OFF = "off"


class GeneratorKind(str, Enum):
    """Pix2PixHD generator: the global generator alone, or with local enhancer(s) (pix2pixHD sec. 3.2)."""

    GLOBAL = "global"
    LOCAL = "local"
