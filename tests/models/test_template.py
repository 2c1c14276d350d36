"""The template family: the runnable minimal model to copy trains on a batch."""

from __future__ import annotations

import pytest
import torch

from breastflow.data import keys
from breastflow.models import build_model, load_model
from breastflow.models import keys as loss_keys


@pytest.mark.parametrize(("gan_loss", "channels"), [("lsgan", (1, 1)), ("vanilla", (1, 3)), ("hinge", (2, 1))])
def test_template_train_step_updates_both_players(gan_loss: str, channels: tuple[int, int]) -> None:
    torch.manual_seed(0)
    c_in, c_out = channels
    model = build_model("template", {"gan_loss": gan_loss, "in_channels": c_in, "out_channels": c_out})
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in model.networks.items()}
    batch = {keys.IMAGE: torch.rand(2, c_in, 16, 16) * 2 - 1, keys.TARGET: torch.rand(2, c_out, 16, 16) * 2 - 1}
    losses = model.train_step(batch)
    assert {loss_keys.G_ADV, loss_keys.G_L1, loss_keys.G_TOTAL, loss_keys.D_TOTAL} <= set(losses)
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in model.networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name
    assert model.step == 1
    assert model.generate(batch[keys.IMAGE]).shape == (2, c_out, 16, 16)


def test_template_refuses_wgan_gp() -> None:
    with pytest.raises(ValueError, match="gradient penalty"):
        build_model("template", {"gan_loss": "wgan_gp"})


def test_template_state_round_trip() -> None:
    torch.manual_seed(0)
    model = build_model("template")
    x = torch.rand(1, 1, 8, 8)
    model.train_step({keys.IMAGE: x, keys.TARGET: -x})
    copy = load_model(model.state_dict())
    assert torch.equal(copy.generate(x), model.generate(x))
