"""The pix2pixhd train_step learns: a tiny network overfits one fixed pair (no pixel loss in pix2pixHD:
it must come through feature matching and the adversarial term)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from breastflow.data import keys
from breastflow.models import build_model

SIZE = 32
STEPS = 100


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth 'pre-contrast' slice and a target far from the identity (inverted contrast plus an enhancing blob)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    pre = 0.6 * torch.exp(-(xx**2 + yy**2) / 0.5) - 0.3 + 0.1 * torch.sin(6 * xx)
    blob = torch.exp(-((xx - 0.3) ** 2 + (yy + 0.2) ** 2) / 0.05)
    post = (-0.8 * pre + 0.8 * blob).clamp(-1, 1)
    return pre.view(1, 1, SIZE, SIZE), post.view(1, 1, SIZE, SIZE)


def test_pix2pixhd_overfits_a_fixed_pair() -> None:
    torch.manual_seed(0)
    pre, post = _pair()
    config = {"ngf": 8, "ndf": 8, "n_blocks_global": 2, "perceptual": "off", "epochs": 1, "decay_epochs": 0}
    model = build_model("pix2pixhd", config)  # 4 downsamplings, as the default
    identity = F.l1_loss(pre, post).item()
    start = F.l1_loss(model.generate(pre), post).item()
    for _ in range(STEPS):
        model.train_step({keys.IMAGE: pre, keys.TARGET: post})
    end = F.l1_loss(model.generate(pre), post).item()
    assert end < start / 3, (start, end)
    assert end < identity / 3, (identity, end)
