"""LPIPS: state-dict layout, math against a hand-written reference, missing-file errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from breastflow.metrics.features import WeightsNotFoundError
from breastflow.metrics.lpips import ENV_VAR, LPIPS, LpipsNet, lpips_distance
from breastflow.metrics.names import LPIPS as LPIPS_NAME
from breastflow.metrics.paired import paired_metrics

# lpips package layouts: conv indices in torchvision ``features`` and the last index of each slice
REFERENCE_LAYOUT = {
    LpipsNet.VGG: {"convs": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], "pools": [4, 9, 16, 23],
                   "taps": [3, 8, 15, 22, 29], "pool": (2, 2), "conv": {}},
    LpipsNet.ALEX: {"convs": [0, 3, 6, 8, 10], "pools": [2, 5], "taps": [1, 4, 7, 9, 11], "pool": (3, 2),
                    "conv": {0: (4, 2), 3: (1, 2)}},
}  # fmt: skip


def random_state_dict(net: LpipsNet, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    sd = LPIPS(net).state_dict()
    for k, v in sd.items():
        if k.startswith("lin"):
            sd[k] = torch.rand_like(v)  # LPIPS heads are non-negative
        elif k.startswith("net") and k.endswith("weight"):
            sd[k] = torch.randn_like(v) * (2.0 / v[0].numel()) ** 0.5
        elif k.startswith("net"):
            sd[k] = torch.randn_like(v) * 0.1
    return sd


def reference_lpips(sd: dict[str, torch.Tensor], net: LpipsNet, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Zhang et al. 2018 Eq. 1 written out from the raw state dict, layer by layer."""
    lay = REFERENCE_LAYOUT[net]
    slice_of = {}
    bounds = [0, *[t + 1 for t in lay["taps"]]]
    for s in range(5):
        for idx in range(bounds[s], bounds[s + 1]):
            slice_of[idx] = s + 1

    def feats(z):
        z = (z - sd["scaling_layer.shift"]) / sd["scaling_layer.scale"]
        taps = []
        for idx in range(lay["taps"][-1] + 1):
            if idx in lay["convs"]:
                stride, pad = lay["conv"].get(idx, (1, 1))
                p = f"net.slice{slice_of[idx]}.{idx}"
                z = F.conv2d(z, sd[p + ".weight"], sd[p + ".bias"], stride=stride, padding=pad)
            elif idx in lay["pools"]:
                z = F.max_pool2d(z, *lay["pool"])
            else:
                z = torch.clamp(z, min=0)
            if idx in lay["taps"]:
                taps.append(z.double().numpy())
        return taps

    out = np.zeros(x.shape[0])
    for k, (a, b) in enumerate(zip(feats(x), feats(y))):
        w = sd[f"lin{k}.model.1.weight"].double().numpy()[0, :, 0, 0]
        for n in range(x.shape[0]):
            total = 0.0
            for i in range(a.shape[2]):
                for j in range(a.shape[3]):
                    va, vb = a[n, :, i, j], b[n, :, i, j]
                    va = va / (np.sqrt((va**2).sum()) + 1e-10)
                    vb = vb / (np.sqrt((vb**2).sum()) + 1e-10)
                    total += float(w @ (va - vb) ** 2)
            out[n] += total / (a.shape[2] * a.shape[3])
    return out


@pytest.mark.parametrize(("net", "size"), [(LpipsNet.VGG, 32), (LpipsNet.ALEX, 64)])
def test_matches_hand_written_reference(tmp_path, net, size):
    sd = random_state_dict(net, seed=0)
    path = tmp_path / f"lpips_{net.value}.pt"
    torch.save(sd, path)
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4096, (2, size, size)).astype(np.uint16)
    fake = np.clip(real.astype(int) + rng.integers(-500, 500, real.shape), 0, 4095).astype(np.uint16)
    ours = lpips_distance(fake, real, 4095, net=net, weights=path)
    to_net = lambda a: torch.from_numpy(a.astype(np.float32) / 4095 * 2 - 1)[:, None].expand(-1, 3, -1, -1)
    ref = reference_lpips(sd, net, to_net(fake), to_net(real))
    np.testing.assert_allclose(ours, ref, rtol=1e-4)
    assert np.all(ours > 0)
    np.testing.assert_allclose(lpips_distance(real, real, 4095, net=net, weights=path), 0.0, atol=1e-7)


def test_paired_metrics_reports_lpips(tmp_path, monkeypatch):
    path = tmp_path / "lpips_vgg.pt"
    torch.save(random_state_dict(LpipsNet.VGG, seed=1), path)
    monkeypatch.setenv(ENV_VAR, str(path))
    rng = np.random.default_rng(2)
    real, fake = rng.random((2, 1, 32, 32)), rng.random((2, 1, 32, 32))
    res = paired_metrics(fake, real, 1.0, metrics=(LPIPS_NAME,))
    np.testing.assert_allclose(res.per_case[LPIPS_NAME], lpips_distance(fake, real, 1.0, weights=path), rtol=1e-6)


def test_missing_weights_name_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    x = np.zeros((1, 32, 32))
    with pytest.raises(WeightsNotFoundError, match=ENV_VAR):
        lpips_distance(x, x, 1.0)
    with pytest.raises(WeightsNotFoundError, match="nothere.pt"):
        lpips_distance(x, x, 1.0, weights=tmp_path / "nothere.pt")
    assert issubclass(WeightsNotFoundError, FileNotFoundError)


def test_wrong_layout_is_rejected(tmp_path):
    path = tmp_path / "alex_as_vgg.pt"
    torch.save(LPIPS(LpipsNet.ALEX).state_dict(), path)
    with pytest.raises(ValueError, match="not an LPIPS-vgg state dict"):
        lpips_distance(np.zeros((1, 32, 32)), np.zeros((1, 32, 32)), 1.0, net="vgg", weights=path)
