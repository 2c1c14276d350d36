"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features"), Eq. 1.

    d(x, y) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (f^l_x - f^l_y)_{hw} ||^2

with ``f^l`` the channel-unit-normalised activations of backbone layer ``l``
(VGG16 relu1_2..relu5_3 or AlexNet relu1..relu5) and ``w_l`` the learned
non-negative linear heads. Inputs are mapped to ``[-1, 1]`` from the explicit
data range (paper 003's reference ran LPIPS on images binarised to {0, 1};
not here) and shifted/scaled by the ImageNet "scaling layer".

Weights cannot be downloaded here. They are read from one local torch file
holding the state dict of ``lpips.LPIPS(net=...)`` (keys
``scaling_layer.shift``, ``scaling_layer.scale``, ``net.sliceK.<i>.weight/bias``,
``linK.model.1.weight``), given as ``weights=`` or ``$BREASTFLOW_LPIPS_WEIGHTS``.
Create it where you have internet with
``torch.save(lpips.LPIPS(net="vgg").state_dict(), "lpips_vgg.pt")``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import numpy as np
import torch
from torch import nn

from breastflow.metrics.features.base import as_image_batch, resolve_weights

ENV_VAR = "BREASTFLOW_LPIPS_WEIGHTS"
NORM_EPS = 1e-10


class LpipsNet(str, Enum):
    """LPIPS backbone."""

    VGG = "vgg"
    ALEX = "alex"


# (slice boundaries in torchvision's ``features`` index space, layer specs by index)
_VGG_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256), 14: (256, 256),
              17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512), 28: (512, 512)}  # fmt: skip
_VGG_POOLS = (4, 9, 16, 23)
_VGG_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
_ALEX_CONVS = {0: (3, 64, 11, 4, 2), 3: (64, 192, 5, 1, 2), 6: (192, 384, 3, 1, 1), 8: (384, 256, 3, 1, 1),
               10: (256, 256, 3, 1, 1)}  # fmt: skip
_ALEX_POOLS = (2, 5)
_ALEX_SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
CHANNELS = {LpipsNet.VGG: (64, 128, 256, 512, 512), LpipsNet.ALEX: (64, 192, 384, 256, 256)}


def _layer(net: LpipsNet, idx: int) -> nn.Module:
    if net is LpipsNet.VGG:
        if idx in _VGG_CONVS:
            return nn.Conv2d(*_VGG_CONVS[idx], kernel_size=3, padding=1)
        if idx in _VGG_POOLS:
            return nn.MaxPool2d(2, 2)
        return nn.ReLU()
    if idx in _ALEX_CONVS:
        cin, cout, k, s, p = _ALEX_CONVS[idx]
        return nn.Conv2d(cin, cout, k, stride=s, padding=p)
    if idx in _ALEX_POOLS:
        return nn.MaxPool2d(3, 2)
    return nn.ReLU()


class _Backbone(nn.Module):
    def __init__(self, net: LpipsNet) -> None:
        super().__init__()
        bounds = _VGG_SLICES if net is LpipsNet.VGG else _ALEX_SLICES
        for k, (a, b) in enumerate(bounds, start=1):
            s = nn.Sequential()
            for idx in range(a, b):
                s.add_module(str(idx), _layer(net, idx))
            self.add_module(f"slice{k}", s)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k in range(1, 6):
            x = getattr(self, f"slice{k}")(x)
            outs.append(x)
        return outs


class _Scaling(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _Lin(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS network with the ``lpips`` package's state-dict layout.

    ``forward(x, y)``: ``(B, 3, H, W)`` in [-1, 1] each -> ``(B,)`` distances.
    """

    def __init__(self, net: LpipsNet = LpipsNet.VGG) -> None:
        super().__init__()
        self.net_type = LpipsNet(net)
        self.scaling_layer = _Scaling()
        self.net = _Backbone(self.net_type)
        for k, c in enumerate(CHANNELS[self.net_type]):
            self.add_module(f"lin{k}", _Lin(c))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.net(self.scaling_layer(x)), self.net(self.scaling_layer(y))
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for k, (a, b) in enumerate(zip(fx, fy)):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + NORM_EPS)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + NORM_EPS)
            lin = getattr(self, f"lin{k}").model[1]
            total = total + lin((a - b) ** 2).mean((1, 2, 3))
        return total


def load_lpips(net: LpipsNet | str = LpipsNet.VGG, weights: Path | str | None = None) -> LPIPS:
    """Build LPIPS and load its weights from a local state-dict file.

    Raises:
        WeightsNotFoundError: no file configured or the file is absent.
        ValueError: the file does not match the layout of ``net``.
    """
    net = LpipsNet(net)
    path = resolve_weights(
        weights,
        ENV_VAR,
        f"lpips ({net.value})",
        f'Create it where you have internet: torch.save(lpips.LPIPS(net="{net.value}").state_dict(), PATH).',
    )
    model = LPIPS(net)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not an LPIPS-{net.value} state dict: {exc}") from exc
    return model.eval()


def lpips_distance(
    fake: torch.Tensor | np.ndarray,
    real: torch.Tensor | np.ndarray,
    data_range: float,
    net: LpipsNet | str = LpipsNet.VGG,
    weights: Path | str | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Per-pair LPIPS distances.

    Args:
        fake, real: ``(N, H, W)`` or ``(N, 1 or 3, H, W)``, same shape, values in ``[0, data_range]``.
        data_range: upper end of the intensity range (mapped to +1; 0 maps to -1).
        net: backbone.
        weights: state-dict file (default ``$BREASTFLOW_LPIPS_WEIGHTS``).
        device: torch device.
        batch_size: pairs per forward pass.

    Returns:
        ``(N,)`` float64 distances.

    Raises:
        ValueError: shape mismatch, bad data range, NaNs; WeightsNotFoundError.
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    x_all, y_all = as_image_batch(fake), as_image_batch(real)
    if x_all.shape != y_all.shape:
        raise ValueError(f"fake {tuple(x_all.shape)} and real {tuple(y_all.shape)} differ in shape")
    if x_all.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS needs 1 or 3 channels, got {x_all.shape[1]}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    model = load_lpips(net, weights).to(dev)
    out = []
    with torch.inference_mode():
        for s in range(0, x_all.shape[0], batch_size):
            pair = []
            for t in (x_all[s : s + batch_size], y_all[s : s + batch_size]):
                t = t.to(dev, torch.float32)
                if not torch.isfinite(t).all():
                    raise ValueError("LPIPS input contains NaN or inf")
                t = (t / float(data_range)).clamp(0, 1) * 2 - 1
                pair.append(t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t)
            out.append(model(*pair).double().cpu())
    return torch.cat(out).numpy()
