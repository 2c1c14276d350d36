"""The model registry, typed configs validated once, and the config a run saves."""

from __future__ import annotations

import json

import pydantic
import pytest

from breastflow.models import MODELS, build_model, validate_config
from breastflow.models.enums import GanLoss, Norm, Perceptual
from breastflow.models.pix2pixhd.config import Pix2PixHDConfig
from breastflow.models.template import TemplateConfig
from breastflow.registry import RegistryError


def test_families_are_registered() -> None:
    assert {"pix2pixhd", "template"} <= set(MODELS.names())


@pytest.mark.parametrize(("typo", "suggestion"), [("pix2pixdh", "pix2pixhd"), ("Pix2PixHD_", "pix2pixhd"), ("templat", "template")])
def test_unknown_name_suggests_the_nearest(typo: str, suggestion: str) -> None:
    with pytest.raises(RegistryError, match=f"did you mean '{suggestion}'"):
        build_model(typo)


def test_unrelated_name_lists_the_valid_ones() -> None:
    with pytest.raises(RegistryError, match=r"unknown GAN model 'stylegan'.*valid: .*pix2pixhd"):
        build_model("stylegan")


BAD_CONFIGS = [
    ({"lsgan": True}, "Extra inputs are not permitted"),
    ({"norm": "layer"}, "norm"),
    ({"gan_loss": "wgan_gp"}, "not wgan_gp"),
    ({"ngf": 0}, "greater than or equal to 1"),
    ({"lr": -1}, "greater than 0"),
    ({"perceptual": "maybe"}, "perceptual"),
]


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS)
def test_bad_config_fails_validation(config: dict, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        validate_config("pix2pixhd", config)


def test_defaults_are_paper_003() -> None:
    config = validate_config("pix2pixhd")
    assert isinstance(config, Pix2PixHDConfig)
    assert (config.input_nc, config.output_nc, config.ngf, config.n_downsample_global, config.n_blocks_global) == (1, 1, 64, 4, 9)
    assert (config.ndf, config.n_layers_d, config.num_d) == (64, 3, 2)
    assert (config.gan_loss, config.norm, config.perceptual) == (GanLoss.LSGAN, Norm.INSTANCE, Perceptual.ON)
    assert (config.lambda_adv, config.lambda_fm, config.lambda_perceptual) == (1.0, 10.0, 10.0)
    assert (config.lr, config.beta1, config.beta2, config.epochs, config.decay_epochs) == (2e-4, 0.5, 0.999, 100, 100)
    assert config.total_epochs == 200


def test_config_is_frozen_and_round_trips_as_json() -> None:
    config = validate_config("pix2pixhd", {"perceptual": "off", "norm": "batch", "vgg_weights": "/x/vgg.pth"})
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.ngf = 3  # type: ignore[misc]
    saved = json.loads(config.model_dump_json())
    assert saved["perceptual"] == "off" and saved["norm"] == "batch" and saved["vgg_weights"] == "/x/vgg.pth"
    assert Pix2PixHDConfig.model_validate_json(config.model_dump_json()) == config


def test_config_object_of_another_family_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a Pix2PixHDConfig, got TemplateConfig"):
        build_model("pix2pixhd", TemplateConfig())


def test_config_object_is_used_as_is() -> None:
    config = TemplateConfig(width=3)
    assert build_model("template", config).config is config
