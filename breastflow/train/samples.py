"""The sample grid saved with each checkpoint: pre | real post | synthetic | difference, one row per item.

Images are in the datasets' ``[-1, 1]`` range and are shown on one fixed grey
scale ``[-1, 1] -> [0, 255]``, so enhancement reads the same in every column and
every checkpoint; the difference column shows ``|synthetic - real|`` on
``[0, 2] -> [0, 255]``. Multi-channel targets (joint phases) show channel 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from breastflow.data import keys
from breastflow.models.base import GanModel

COLUMNS = ("pre", "real post", "synthetic", "|difference|")
HEADER_PX = 14
MIN_TILE_PX = 72


def tile_zoom(width: int) -> int:
    """Integer nearest-neighbour zoom that makes a tile at least :data:`MIN_TILE_PX` wide (room for its title)."""
    return max(1, -(-MIN_TILE_PX // max(int(width), 1)))


def _grey(image: Tensor, low: float, high: float) -> np.ndarray:
    scaled = (image.float().clamp(low, high) - low) / (high - low) * 255.0
    return scaled.round().to(torch.uint8).cpu().numpy()


def sample_grid(source: Tensor, target: Tensor, synthetic: Tensor) -> Image.Image:
    """A PIL grey image: one row per item, columns :data:`COLUMNS`, with a text header.

    Tiles narrower than :data:`MIN_TILE_PX` are zoomed by an integer factor (nearest), so titles fit.

    Args:
        source: ``(B, C, H, W)`` inputs in ``[-1, 1]`` (channel 0 shown).
        target: ``(B, C', H, W)`` real targets in ``[-1, 1]``.
        synthetic: ``(B, C', H, W)`` generator outputs in ``[-1, 1]``.

    Raises:
        ValueError: the three batches differ in size or image shape.
    """
    if not (source.shape[0] == target.shape[0] == synthetic.shape[0]) or target.shape != synthetic.shape \
            or source.shape[-2:] != target.shape[-2:]:
        raise ValueError(f"sample grid needs matching batches, got {tuple(source.shape)}, {tuple(target.shape)}, "
                         f"{tuple(synthetic.shape)}")
    rows = []
    for b in range(source.shape[0]):
        diff = (synthetic[b, 0].float() - target[b, 0].float()).abs()
        rows.append(np.concatenate([_grey(source[b, 0], -1, 1), _grey(target[b, 0], -1, 1),
                                    _grey(synthetic[b, 0], -1, 1), _grey(diff, 0, 2)], axis=1))
    body = Image.fromarray(np.concatenate(rows, axis=0))
    zoom = tile_zoom(source.shape[-1])
    if zoom > 1:
        body = body.resize((body.width * zoom, body.height * zoom), Image.Resampling.NEAREST)
    canvas = Image.new("L", (body.width, body.height + HEADER_PX), 0)
    canvas.paste(body, (0, HEADER_PX))
    draw = ImageDraw.Draw(canvas)
    tile = body.width // 4
    for k, title in enumerate(COLUMNS):
        draw.text((k * tile + 1, 1), title, fill=255)
    return canvas


@torch.no_grad()
def save_sample_grid(model: GanModel, batch: dict, path: str | Path) -> Path:
    """Run ``model.generate`` on ``batch`` (keyed by :mod:`breastflow.data.keys`) and save the grid as PNG."""
    source = batch[keys.IMAGE].to(model.device)
    synthetic = model.generate(source).float().cpu()
    out = Path(path)
    sample_grid(batch[keys.IMAGE].cpu(), batch[keys.TARGET].cpu(), synthetic).save(out, format="PNG")
    return out
