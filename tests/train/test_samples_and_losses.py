"""The sample grid's layout and ``losses.csv`` across a resume (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from breastflow.train.losses_log import LossLog, read_losses
from breastflow.train.samples import HEADER_PX, sample_grid, tile_zoom


@pytest.mark.parametrize("size", [16, 32, 96])
def test_grid_columns_hold_pre_real_synthetic_and_difference(size):
    pre = torch.full((2, 1, size, size), -1.0)
    real = torch.full((2, 1, size, size), 1.0)
    fake = torch.zeros((2, 1, size, size))
    grid = np.asarray(sample_grid(pre, real, fake))
    zoom = tile_zoom(size)
    tile = size * zoom
    assert grid.shape == (HEADER_PX + 2 * tile, 4 * tile) and tile >= 72
    body = grid[HEADER_PX:]
    means = [body[:, k * tile:(k + 1) * tile].mean() for k in range(4)]
    assert means == pytest.approx([0, 255, 128, 128], abs=1)  # -1, 1, 0 on [-1, 1]; |0 - 1| = 1 on [0, 2]


def test_grid_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="matching batches"):
        sample_grid(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_losses_csv_keeps_one_row_per_epoch_across_a_resume(tmp_path):
    log = LossLog(str(tmp_path), "checkpoints/m/r", keep_until=0)
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "step": 10 * epoch, "g_total": 1.0 / epoch})
    resumed = LossLog(str(tmp_path), "checkpoints/m/r", keep_until=2)  # crashed after epoch 3, checkpoint at 2
    resumed.append({"epoch": 3, "step": 30, "g_total": 0.5, "d_total": 0.25})
    rows = read_losses(str(tmp_path / "checkpoints/m/r/losses.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["g_total"] == 0.5 and "d_total" not in rows[0]
