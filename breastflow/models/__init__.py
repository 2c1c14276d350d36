"""GAN families of the papers behind one contract and one registry: Pix2PixHD (pre -> post contrast), CycleGAN harmonisation, conditional DCGAN/WGAN lesion patches, progressive WGAN-GP mammograms.

Families register themselves on import; this explicit list is the only place
they are imported (no module names guessed from strings).
"""

from breastflow.models import template  # noqa: F401  (registers "template")
from breastflow.models.base import GanModel, ModelStateError
from breastflow.models.pix2pixhd import model as _pix2pixhd  # noqa: F401  (registers "pix2pixhd")
from breastflow.models.registry import MODELS, build_model, load_model, model_name, validate_config

__all__ = ["MODELS", "GanModel", "ModelStateError", "build_model", "load_model", "model_name", "validate_config"]
