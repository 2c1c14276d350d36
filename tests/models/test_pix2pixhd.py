"""The pix2pixhd family: train_step, generate, input checks, local enhancer and joint-phase outputs."""

from __future__ import annotations

import pytest
import torch
from model_helpers import TINY_OFF

from breastflow.data import keys
from breastflow.models import build_model
from breastflow.models import keys as loss_keys

EXPECTED_KEYS = {
    loss_keys.G_ADV, loss_keys.G_FM, loss_keys.G_PERCEPTUAL, loss_keys.G_TOTAL, loss_keys.G_L1,
    loss_keys.D_REAL, loss_keys.D_FAKE, loss_keys.D_TOTAL, loss_keys.LR,
}  # fmt: skip

CASES = [
    # (id, options, image size)
    ("global 1->1 lsgan", {}, 16),
    ("global 1->3 joint phases", {"output_nc": 3}, 16),
    ("local 1->1", {"generator": "local", "ngf": 4}, 32),
    ("global hinge batch norm zero pad", {"gan_loss": "hinge", "norm": "batch", "padding": "zero"}, 16),
    ("global vanilla 3 scales", {"gan_loss": "vanilla", "num_d": 3, "n_layers_d": 2}, 32),
]


@pytest.mark.parametrize(("case", "options", "size"), CASES, ids=[c[0] for c in CASES])
def test_train_step_updates_generator_and_discriminator(case: str, options: dict, size: int) -> None:
    torch.manual_seed(0)
    model = build_model("pix2pixhd", {**TINY_OFF, **options})
    c_out = model.config.output_nc
    batch = {
        keys.IMAGE: torch.rand(2, 1, size, size) * 2 - 1,
        keys.TARGET: torch.rand(2, c_out, size, size) * 2 - 1,
        keys.KEY: ["s0/pre/z1", "s0/pre/z2"],
    }
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks.items()}
    losses = model.train_step(batch)
    assert set(losses) == EXPECTED_KEYS
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    expected_total = losses[loss_keys.G_ADV] + 10 * losses[loss_keys.G_FM]
    assert losses[loss_keys.G_TOTAL] == pytest.approx(expected_total, rel=1e-5)  # eq. 3, perceptual off
    assert losses[loss_keys.D_TOTAL] == pytest.approx(0.5 * (losses[loss_keys.D_REAL] + losses[loss_keys.D_FAKE]), rel=1e-5)
    for name, net in model.networks.items():
        # every weight moves (a bias may not: under hinge, D's last bias has gradient 0 while |logits| < 1)
        stuck = [
            pname
            for (pname, p), old in zip(net.named_parameters(), before[name], strict=True)
            if p.dim() > 1 and torch.equal(p, old)
        ]
        assert not stuck, f"{name}: weights {stuck} did not change"
    assert model.step == 1
    out = model.generate(batch[keys.IMAGE])
    assert out.shape == (2, c_out, size, size) and not out.requires_grad


def test_generate_restores_the_training_mode() -> None:
    model = build_model("pix2pixhd", TINY_OFF)
    model.train()
    model.generate(torch.zeros(1, 1, 16, 16))
    assert model.generator.training
    model.eval()
    model.generate(torch.zeros(1, 1, 16, 16))
    assert not model.generator.training


BAD_BATCHES = [
    ({keys.IMAGE: torch.zeros(1, 1, 16, 16)}, KeyError, "batch\\['target'\\]"),
    ({keys.IMAGE: torch.zeros(1, 3, 16, 16), keys.TARGET: torch.zeros(1, 1, 16, 16)}, ValueError, r"IMAGE must be \(B, 1, H, W\)"),
    ({keys.IMAGE: torch.zeros(1, 1, 16, 16), keys.TARGET: torch.zeros(1, 3, 16, 16)}, ValueError, r"TARGET must be \(B, 1, H, W\)"),
    ({keys.IMAGE: torch.zeros(1, 1, 18, 16), keys.TARGET: torch.zeros(1, 1, 18, 16)}, ValueError, "multiples of 4"),
    ({keys.IMAGE: torch.zeros(1, 1, 4, 4), keys.TARGET: torch.zeros(1, 1, 4, 4)}, ValueError, ">= 8"),
]  # fmt: skip


@pytest.mark.parametrize(("batch", "error", "message"), BAD_BATCHES)
def test_bad_batches_are_reported(batch: dict, error: type, message: str) -> None:
    model = build_model("pix2pixhd", TINY_OFF)
    with pytest.raises(error, match=message):
        model.train_step(batch)


def test_default_size_rule_follows_the_generator() -> None:
    assert build_model("template").config is not None
    config = build_model("pix2pixhd", {**TINY_OFF, "generator": "local", "n_local_enhancers": 2}).config
    assert config.size_multiple == 2 ** (2 + 2)


def test_train_step_under_bf16_autocast_and_channels_last(vgg_file) -> None:
    """The engine's GPU settings (bf16 autocast, channels-last), here on CPU: finite losses, fp32 weights."""
    torch.manual_seed(0)
    model = build_model("pix2pixhd", {**TINY_OFF, "perceptual": "on", "vgg_weights": str(vgg_file)})
    model.wrap_networks(lambda name, net: net.to(memory_format=torch.channels_last))
    x = (torch.rand(2, 1, 16, 16) * 2 - 1).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.train_step({keys.IMAGE: x, keys.TARGET: -x})
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert losses[loss_keys.G_PERCEPTUAL] > 0
    assert all(p.dtype == torch.float32 for net in model.networks.values() for p in net.parameters())
