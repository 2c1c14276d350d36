"""SSIM and MS-SSIM stay within their exact range [-1, 1] on the float32 path."""

from __future__ import annotations

import numpy as np
import torch

from breastflow.metrics import names
from breastflow.metrics.paired import paired_metrics
from breastflow.metrics.ssim import ms_ssim, ssim_map


def test_identical_float32_images_never_exceed_one():
    """Round-off took SSIM of identical images to 1.00000001 (seed 31) before the clamp."""
    worst = 0.0
    for seed in range(40):
        x = np.random.default_rng(seed).random((4, 64, 64)).astype(np.float32)
        values = paired_metrics(x, x, 1.0, metrics=[names.SSIM]).per_case[names.SSIM]
        worst = max(worst, float(values.max()))
        t = torch.from_numpy(x)[:, None]
        assert float(ssim_map(t, t, 1.0).max()) <= 1.0
    assert 0.9999 < worst <= 1.0


def test_ms_ssim_of_identical_images_at_most_one():
    x = np.random.default_rng(31).random((2, 1, 176, 176)).astype(np.float32)
    t = torch.from_numpy(x)
    values = ms_ssim(t, t, 1.0)
    assert torch.all(values <= 1.0) and torch.all(values > 0.9999)
    opposite = paired_metrics(x[:, 0], 1 - x[:, 0], 1.0, metrics=[names.SSIM]).per_case[names.SSIM]
    assert np.all(opposite >= -1.0) and np.all(opposite < 0)


def test_num_threads_set_for_the_call_and_restored(monkeypatch):
    calls = []
    real_set = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real_set(n)))
    before = torch.get_num_threads()
    x = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
    one = paired_metrics(x, x[::-1], 1.0, metrics=[names.SSIM], num_threads=1).per_case[names.SSIM]
    assert calls == [1, before] and torch.get_num_threads() == before
    default = paired_metrics(x, x[::-1], 1.0, metrics=[names.SSIM]).per_case[names.SSIM]
    assert calls == [1, before]  # None leaves the process setting alone
    np.testing.assert_allclose(one, default, rtol=0, atol=1e-6)
