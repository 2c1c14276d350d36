"""Parameter counts equal NVIDIA pix2pixHD's for the same options (docs/models.md derives each number).

Expected values were computed by hand from NVIDIA pix2pixHD ``models/networks.py``
(``GlobalGenerator``, ``LocalEnhancer``, ``MultiscaleDiscriminator`` with
``getIntermFeat``, instance norm with ``affine=False``), not from this code:

* global G (ngf 64, 4 downsamplings, 9 blocks): 182,424,384 parameters independent of the
  channel counts (downsampling 6,268,800 + residual 169,887,744 + upsampling 6,267,840),
  plus the first 7x7 conv ``49*64*input_nc + 64`` and the last ``49*64*output_nc + output_nc``.
* one PatchGAN (ndf 64, 3 layers): 2,761,601 plus its first conv ``16*64*(input_nc+output_nc) + 64``; two scales.
* local enhancer (ngf 32): the global G at ngf 64 without its last conv, plus
  ``49*32*input_nc + 32 + 18,496 + 221,568 + 18,464 + 49*32*output_nc + output_nc``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from breastflow.models import build_model
from breastflow.models.pix2pixhd.config import Pix2PixHDConfig
from breastflow.models.pix2pixhd.model import build_discriminator, build_generator


def _count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def _counts(options: dict) -> dict[str, int]:
    """Counts of the networks built on the meta device (no memory, no init cost)."""
    config = Pix2PixHDConfig(**options, perceptual="off")
    with torch.device("meta"):
        return {"generator": _count(build_generator(config)), "discriminator": _count(build_discriminator(config))}

CASES = [
    # (name, options, generator params, discriminator params)
    ("stock 3->3 global", {"input_nc": 3, "output_nc": 3}, 182_443_267, 5_535_618),
    ("breastflow 1->1 global", {"input_nc": 1, "output_nc": 1}, 182_430_721, 5_527_426),
    ("breastflow 1->3 global", {"input_nc": 1, "output_nc": 3}, 182_436_995, 5_531_522),
    ("stock 3->3 local ngf 32", {"input_nc": 3, "output_nc": 3, "generator": "local", "ngf": 32}, 182_701_827, 5_535_618),
    ("breastflow 1->1 local ngf 32", {"input_nc": 1, "output_nc": 1, "generator": "local", "ngf": 32}, 182_689_281, 5_527_426),
]  # fmt: skip


@pytest.mark.parametrize(("name", "options", "generator", "discriminator"), CASES, ids=[c[0] for c in CASES])
def test_parameter_counts_match_nvidia_pix2pixhd(name: str, options: dict, generator: int, discriminator: int) -> None:
    assert _counts(options) == {"generator": generator, "discriminator": discriminator}


def test_model_reports_the_counts_of_its_networks() -> None:
    """The default model (breastflow 1 -> 1) built for real, through the registry."""
    model = build_model("pix2pixhd", {"perceptual": "off"})
    assert model.parameter_counts() == {"generator": 182_430_721, "discriminator": 5_527_426}


def test_hand_formula_of_the_global_generator() -> None:
    """The closed form in the module docstring, for channel counts not in the table."""
    for input_nc, output_nc in ((2, 5), (4, 1)):
        expected_g = 182_424_384 + 49 * 64 * input_nc + 64 + 49 * 64 * output_nc + output_nc
        expected_d = 2 * (2_761_601 + 16 * 64 * (input_nc + output_nc) + 64)
        assert _counts({"input_nc": input_nc, "output_nc": output_nc}) == {
            "generator": expected_g,
            "discriminator": expected_d,
        }


def test_instance_norm_has_no_parameters() -> None:
    """pix2pixHD's instance norm is affine=False: batch norm adds 2 parameters per normalised channel."""
    inst = build_model("pix2pixhd", {"perceptual": "off", "ngf": 8, "ndf": 8, "n_blocks_global": 1})
    batch = build_model("pix2pixhd", {"perceptual": "off", "ngf": 8, "ndf": 8, "n_blocks_global": 1, "norm": "batch"})
    # G norms: 8 + (16+32+64+128) + 1 block * 2 * 128 + (64+32+16+8) = 624 channels; D: 2 * (16+32+64)
    assert batch.parameter_counts()["generator"] - inst.parameter_counts()["generator"] == 2 * 624
    assert batch.parameter_counts()["discriminator"] - inst.parameter_counts()["discriminator"] == 2 * 2 * 112
