"""VGG19 weights: torchvision layout loads strictly; a missing file is a clear error unless perceptual is off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from model_helpers import TINY, TINY_OFF, save_torchvision_vgg19

from breastflow.data import keys
from breastflow.models import build_model
from breastflow.models import keys as loss_keys
from breastflow.models.pix2pixhd.losses import IMAGENET_MEAN, IMAGENET_STD, VGG_LAYER_WEIGHTS, VggPerceptualLoss
from breastflow.models.pix2pixhd.vgg import MissingWeightsError, load_vgg19_features


def test_torchvision_layout_loads_strictly(tmp_path: Path) -> None:
    state = save_torchvision_vgg19(tmp_path / "vgg19.pth", seed=3)
    net = load_vgg19_features(tmp_path / "vgg19.pth")
    loaded = net.features.state_dict()
    assert len(loaded) == 32  # 16 convolutions, weight and bias
    for key, value in loaded.items():
        assert torch.equal(value, state[f"features.{key}"])


def test_missing_layer_or_wrong_shape_is_refused(tmp_path: Path) -> None:
    state = save_torchvision_vgg19(tmp_path / "full.pth")
    partial = {k: v for k, v in state.items() if k != "features.34.weight"}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r'Missing key\(s\).*"34\.weight"'):
        load_vgg19_features(tmp_path / "partial.pth")
    torch.save({**state, "features.0.weight": torch.zeros(64, 1, 3, 3)}, tmp_path / "grey.pth")
    with pytest.raises(ValueError, match="size mismatch"):
        load_vgg19_features(tmp_path / "grey.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="unexpected keys"):
        load_vgg19_features(tmp_path / "other.pth")


@pytest.mark.parametrize("weights", [None, "does/not/exist.pth"])
def test_missing_weights_stop_model_construction_clearly(weights: str | None) -> None:
    with pytest.raises(MissingWeightsError) as err:
        build_model("pix2pixhd", {**TINY, "vgg_weights": weights})
    message = str(err.value)
    assert "VGG19" in message  # what is missing
    assert "'vgg_weights'" in message  # which config key to set
    assert 'perceptual="off"' in message and "--set perceptual=off" in message  # how to turn the term off
    if weights:
        assert weights in message


def test_perceptual_off_needs_no_file_and_is_recorded() -> None:
    model = build_model("pix2pixhd", TINY_OFF)
    assert model.frozen_modules() == {}
    assert json.loads(model.config.model_dump_json())["perceptual"] == "off"
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    assert model.train_step({keys.IMAGE: x, keys.TARGET: x})[loss_keys.G_PERCEPTUAL] == 0.0


def test_perceptual_term_is_used_in_train_step(vgg_file: Path) -> None:
    torch.manual_seed(0)
    model = build_model("pix2pixhd", {**TINY, "vgg_weights": str(vgg_file)})
    assert json.loads(model.config.model_dump_json())["perceptual"] == "on"
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    losses = model.train_step({keys.IMAGE: x, keys.TARGET: -x})
    assert losses[loss_keys.G_PERCEPTUAL] > 0
    expected = losses[loss_keys.G_ADV] + 10 * losses[loss_keys.G_FM] + 10 * losses[loss_keys.G_PERCEPTUAL]
    assert losses[loss_keys.G_TOTAL] == pytest.approx(expected, rel=1e-5)


def test_perceptual_loss_replicates_grey_and_normalises_inside(vgg_file: Path) -> None:
    """Against a hand computation: each channel -> 3 grey channels in [0, 1] -> ImageNet normalised."""
    vgg = load_vgg19_features(vgg_file)
    loss = VggPerceptualLoss(vgg)
    torch.manual_seed(1)
    fake, real = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = 0.0
    for c in range(3):  # channel c of every sample is its own grey image; channels are averaged
        fa = vgg((fake[:, c : c + 1].repeat(1, 3, 1, 1) * 0.5 + 0.5 - mean) / std)
        ra = vgg((real[:, c : c + 1].repeat(1, 3, 1, 1) * 0.5 + 0.5 - mean) / std)
        expected += sum(w * (f - r).abs().mean() for w, f, r in zip(VGG_LAYER_WEIGHTS, fa, ra, strict=True)) / 3
    assert loss(fake, real).item() == pytest.approx(float(expected), rel=1e-4)
    assert loss(real, real).item() == 0.0


def test_perceptual_gradient_reaches_the_generator_output_not_vgg(vgg_file: Path) -> None:
    loss = VggPerceptualLoss(load_vgg19_features(vgg_file))
    fake = (torch.rand(1, 1, 16, 16) * 2 - 1).requires_grad_(True)
    loss(fake, torch.zeros(1, 1, 16, 16)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
