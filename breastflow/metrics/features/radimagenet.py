"""``radimagenet``: Keras InceptionV3 (no top) with RadImageNet weights (FID_Rad).

Paper 003's reference computed FID_Rad with ``keras.applications.InceptionV3(
include_top=False, pooling="avg")`` loaded from ``RadImageNet-InceptionV3_notop.h5``
(Mei et al. 2022) on 224x224 inputs. This module re-implements that network in
torch, layer for layer:

* every convolution is Keras' ``conv2d_bn``: Conv2D without bias, then
  BatchNormalization(scale=False, epsilon=1e-3), then ReLU; "same" padding is
  symmetric because every "same" convolution has stride 1 and odd kernels;
* average pools in the Inception blocks are 3x3/1 "same" and, as in
  TensorFlow, do not count the padding;
* the 94 conv/BN layers are created in the order of
  ``keras/applications/inception_v3.py``, which is the order of the numeric
  suffixes Keras gives them (``conv2d``, ``conv2d_1``, ... or offset, e.g.
  ``conv2d_95`` when other layers were built first), so weights are matched by
  that creation order and checked by shape.

Input: ``(B, 3, 224, 224)`` in ``[-1, 1]`` (Keras ``preprocess_input`` mode
"tf"); output: ``(B, 2048)`` global average pooled features.

Weights come from ``weights`` or ``$BREASTFLOW_RADIMAGENET_WEIGHTS``: the
Keras ``.h5`` (read with h5py; both ``save_weights`` and full-model layouts)
or a converted torch state dict (``.pt``/``.pth``, see :func:`convert_h5_to_state_dict`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from breastflow.metrics.features.base import (
    EXTRACTORS,
    FeatureExtractor,
    file_sha256,
    resolve_weights,
)

ENV_VAR = "BREASTFLOW_RADIMAGENET_WEIGHTS"
WEIGHTS_FILE = "RadImageNet-InceptionV3_notop.h5"
BN_EPS = 1e-3


class ConvBN(nn.Module):
    """Keras ``conv2d_bn``: conv (no bias) -> BN without gamma -> ReLU."""

    def __init__(self, cin: int, cout: int, kh: int, kw: int, stride: int = 1, same: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=(kh // 2, kw // 2) if same else 0, bias=False)
        self.register_buffer("bn_beta", torch.zeros(cout))
        self.register_buffer("bn_mean", torch.zeros(cout))
        self.register_buffer("bn_var", torch.ones(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return F.relu(F.batch_norm(x, self.bn_mean, self.bn_var, None, self.bn_beta, False, 0.0, BN_EPS))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max3s2(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=2)


class BlockA(nn.Module):
    """mixed0-2 (35x35). Creation order: 1x1, 5x5 (2), 3x3dbl (3), pool (1)."""

    def __init__(self, cin: int, pool: int) -> None:
        super().__init__()
        self.b1 = ConvBN(cin, 64, 1, 1)
        self.b5_1, self.b5_2 = ConvBN(cin, 48, 1, 1), ConvBN(48, 64, 5, 5)
        self.b3_1, self.b3_2, self.b3_3 = ConvBN(cin, 64, 1, 1), ConvBN(64, 96, 3, 3), ConvBN(96, 96, 3, 3)
        self.bp = ConvBN(cin, pool, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b1(x), self.b5_2(self.b5_1(x)), self.b3_3(self.b3_2(self.b3_1(x))), self.bp(_avg3(x))], 1
        )


class BlockB(nn.Module):
    """mixed3 (35 -> 17)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.b3 = ConvBN(cin, 384, 3, 3, stride=2, same=False)
        self.d_1, self.d_2 = ConvBN(cin, 64, 1, 1), ConvBN(64, 96, 3, 3)
        self.d_3 = ConvBN(96, 96, 3, 3, stride=2, same=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3(x), self.d_3(self.d_2(self.d_1(x))), _max3s2(x)], 1)


class BlockC(nn.Module):
    """mixed4-7 (17x17) with ``c`` channels in the 7x7 towers."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.b1 = ConvBN(768, 192, 1, 1)
        self.b7_1, self.b7_2, self.b7_3 = ConvBN(768, c, 1, 1), ConvBN(c, c, 1, 7), ConvBN(c, 192, 7, 1)
        self.d_1, self.d_2, self.d_3 = ConvBN(768, c, 1, 1), ConvBN(c, c, 7, 1), ConvBN(c, c, 1, 7)
        self.d_4, self.d_5 = ConvBN(c, c, 7, 1), ConvBN(c, 192, 1, 7)
        self.bp = ConvBN(768, 192, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.b7_3(self.b7_2(self.b7_1(x)))
        d = self.d_5(self.d_4(self.d_3(self.d_2(self.d_1(x)))))
        return torch.cat([self.b1(x), b7, d, self.bp(_avg3(x))], 1)


class BlockD(nn.Module):
    """mixed8 (17 -> 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.b3_1, self.b3_2 = ConvBN(768, 192, 1, 1), ConvBN(192, 320, 3, 3, stride=2, same=False)
        self.b7_1, self.b7_2, self.b7_3 = ConvBN(768, 192, 1, 1), ConvBN(192, 192, 1, 7), ConvBN(192, 192, 7, 1)
        self.b7_4 = ConvBN(192, 192, 3, 3, stride=2, same=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.b7_4(self.b7_3(self.b7_2(self.b7_1(x))))
        return torch.cat([self.b3_2(self.b3_1(x)), b7, _max3s2(x)], 1)


class BlockE(nn.Module):
    """mixed9-10 (8x8, 2048 channels)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.b1 = ConvBN(cin, 320, 1, 1)
        self.b3, self.b3_a, self.b3_b = ConvBN(cin, 384, 1, 1), ConvBN(384, 384, 1, 3), ConvBN(384, 384, 3, 1)
        self.d_1, self.d_2 = ConvBN(cin, 448, 1, 1), ConvBN(448, 384, 3, 3)
        self.d_a, self.d_b = ConvBN(384, 384, 1, 3), ConvBN(384, 384, 3, 1)
        self.bp = ConvBN(cin, 192, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.b3(x)
        d = self.d_2(self.d_1(x))
        return torch.cat(
            [self.b1(x), self.b3_a(b3), self.b3_b(b3), self.d_a(d), self.d_b(d), self.bp(_avg3(x))], 1
        )


class KerasInceptionV3(nn.Module):
    """Keras ``InceptionV3(include_top=False, pooling="avg")`` in torch.

    ``forward``: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 2048)``. Submodules are
    declared in Keras' creation order, so ``conv_layers()`` lists the 94
    :class:`ConvBN` in the order of the Keras layer-name suffixes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.ModuleList(
            [
                ConvBN(3, 32, 3, 3, stride=2, same=False),
                ConvBN(32, 32, 3, 3, same=False),
                ConvBN(32, 64, 3, 3),
                ConvBN(64, 80, 1, 1, same=False),
                ConvBN(80, 192, 3, 3, same=False),
            ]
        )
        self.blocks = nn.ModuleList(
            [
                BlockA(192, 32),
                BlockA(256, 64),
                BlockA(288, 64),
                BlockB(288),
                BlockC(128),
                BlockC(160),
                BlockC(160),
                BlockC(192),
                BlockD(),
                BlockE(1280),
                BlockE(2048),
            ]
        )

    def conv_layers(self) -> list[ConvBN]:
        """The 94 conv/BN units in Keras creation order."""
        return [m for m in self.modules() if isinstance(m, ConvBN)]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, 2048, h, w)`` before pooling (5x5 for 224 input)."""
        s = self.stem
        x = s[1](s[0](x))
        x = _max3s2(s[2](x))
        x = _max3s2(s[4](s[3](x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean((2, 3))


def _suffix(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


def read_keras_h5(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Read a Keras weights h5 into ``{layer_name: {weight_basename: array}}``.

    Handles ``model.save_weights`` (layers at the root) and ``model.save``
    (layers under ``model_weights``) layouts. ``weight_basename`` drops the
    layer prefix and ``:0`` suffix, e.g. ``kernel``, ``moving_mean``.
    """
    import h5py

    out: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs.get("layer_names", list(root.keys()))]
        for layer in names:
            group = root[layer]
            wnames = group.attrs.get("weight_names", [])
            weights = {}
            for wn in wnames:
                wn = wn.decode() if isinstance(wn, bytes) else str(wn)
                base = wn.split("/")[-1].split(":")[0]
                weights[base] = np.asarray(group[wn])
            if weights:
                out[layer] = weights
    return out


def keras_h5_to_state_dict(path: Path, model: KerasInceptionV3 | None = None) -> dict[str, torch.Tensor]:
    """Map the Keras InceptionV3 h5 weights onto :class:`KerasInceptionV3`'s state dict.

    Raises:
        ValueError: the file does not hold 94 conv and 94 BN layers of the
            InceptionV3 shapes (naming the first mismatching layer).
    """
    model = model or KerasInceptionV3()
    layers = read_keras_h5(path)
    convs = sorted((n for n, w in layers.items() if "kernel" in w), key=_suffix)
    bns = sorted((n for n, w in layers.items() if "moving_mean" in w), key=_suffix)
    units = model.conv_layers()
    if len(convs) != len(units) or len(bns) != len(units):
        raise ValueError(
            f"{path}: expected {len(units)} conv and {len(units)} batch-norm layers of Keras InceptionV3 (notop), "
            f"found {len(convs)} and {len(bns)}"
        )
    prefix = {id(m): n for n, m in model.named_modules()}
    sd: dict[str, torch.Tensor] = {}
    for unit, conv_name, bn_name in zip(units, convs, bns):
        kernel = torch.from_numpy(layers[conv_name]["kernel"]).permute(3, 2, 0, 1).contiguous()
        if kernel.shape != unit.conv.weight.shape:
            raise ValueError(
                f"{path}: layer {conv_name!r} has kernel {tuple(kernel.shape)} (torch layout), "
                f"expected {tuple(unit.conv.weight.shape)}; is this InceptionV3 notop?"
            )
        bn = layers[bn_name]
        if "gamma" in bn:
            raise ValueError(f"{path}: layer {bn_name!r} has a gamma; Keras InceptionV3 uses scale=False")
        p = prefix[id(unit)]
        sd[f"{p}.conv.weight"] = kernel.float()
        sd[f"{p}.bn_beta"] = torch.from_numpy(bn["beta"]).float()
        sd[f"{p}.bn_mean"] = torch.from_numpy(bn["moving_mean"]).float()
        sd[f"{p}.bn_var"] = torch.from_numpy(bn["moving_variance"]).float()
    return sd


def convert_h5_to_state_dict(h5_path: Path, out_path: Path) -> None:
    """Convert the Keras h5 once to a torch state dict file (faster loading, no h5py)."""
    torch.save(keras_h5_to_state_dict(Path(h5_path)), out_path)


@EXTRACTORS.register("radimagenet")
class RadImageNetExtractor(FeatureExtractor):
    """RadImageNet InceptionV3 features, ``(B, 3, 224, 224)`` in [-1, 1] -> ``(B, 2048)``.

    Args:
        weights: ``RadImageNet-InceptionV3_notop.h5`` or a converted state dict;
            default ``$BREASTFLOW_RADIMAGENET_WEIGHTS``.
        device: torch device.

    Raises:
        WeightsNotFoundError: no file configured or the file is absent.
    """

    name = "radimagenet"
    native_size = 224
    channels = 3
    input_range = (-1.0, 1.0)
    feature_dim = 2048

    def __init__(self, weights: Path | None, device: torch.device) -> None:
        self.path = resolve_weights(
            weights,
            ENV_VAR,
            "radimagenet",
            f"Download {WEIGHTS_FILE} (RadImageNet, Mei et al. 2022) where you have internet and point to it.",
        )
        self.device = device
        self.model = KerasInceptionV3()
        if self.path.suffix.lower() in (".h5", ".hdf5", ".keras"):
            sd = keras_h5_to_state_dict(self.path, self.model)
        else:
            sd = torch.load(self.path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(sd, strict=True)
        self.model.eval().to(device)

    def weights_id(self) -> str:
        return file_sha256(self.path)

    def features_from_batch(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
