"""VGG19 ``features`` in torchvision's layer indexing, loaded from a local state dict file.

torchvision is not usable here and nothing downloads at run time, so the
network is built by hand: ``features.N`` is the N-th layer of torchvision's
``vgg19().features`` (16 3x3 convolutions with ReLU, 5 max-pools), so a
standard torchvision ``vgg19`` state dict loads strictly. Create the file where
you have internet with ``torch.save(torchvision.models.vgg19(weights="IMAGENET1K_V1").state_dict(), "vgg19.pth")``
(or use torchvision's cached ``vgg19-dcbb9e9d.pth``) and set the config key
``vgg_weights`` to its path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

#: torchvision's configuration "E": output channels of each conv, "M" a 2x2 max-pool.
VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
#: ``features`` index after which relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 are taken (pix2pixHD ``Vgg19`` slices).
SLICE_ENDS: tuple[int, ...] = (2, 7, 12, 21, 30)
FEATURES_PREFIX = "features."


class MissingWeightsError(FileNotFoundError):
    """A weight file the configuration asks for does not exist."""


class Vgg19Features(nn.Module):
    """Frozen VGG19 convolutional trunk returning the five pix2pixHD perceptual feature maps.

    Shapes: ``(B, 3, H, W)`` ImageNet-normalised -> ``[relu1_1 (B, 64, H, W), relu2_1 (B, 128, H/2, W/2),
    relu3_1, relu4_1, relu5_1 (B, 512, H/16, W/16)]``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for spec in VGG19_LAYOUT:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(spec), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(spec)
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Vgg19Features:
        """Always in eval mode (frozen loss network)."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        start = 0
        for end in SLICE_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x)
            start = end
        return out


def load_vgg19_features(path: Path | str | None, config_key: str = "vgg_weights") -> Vgg19Features:
    """Build :class:`Vgg19Features` and load the ``features.*`` tensors of a torchvision ``vgg19`` state dict.

    ``classifier.*`` keys of a full torchvision file are ignored; every
    ``features.N.weight``/``bias`` must be present with torchvision's shapes.

    Args:
        path: the local weight file.
        config_key: the config key that names the file (used in the error message).

    Raises:
        MissingWeightsError: ``path`` is None or no such file; the message says how to fix it or
            turn the perceptual term off.
        ValueError: the file is not a torchvision-layout ``vgg19`` state dict.
    """
    how = (
        f"set the config key {config_key!r} to a local torchvision vgg19 state dict "
        '(torch.save(torchvision.models.vgg19(weights="IMAGENET1K_V1").state_dict(), "vgg19.pth") '
        'where you have internet), or turn the perceptual loss off with perceptual="off" (--set perceptual=off)'
    )
    if path is None:
        raise MissingWeightsError(f"VGG19 weights for the perceptual loss are not configured: {how}")
    file = Path(path)
    if not file.is_file():
        raise MissingWeightsError(f"VGG19 weight file {str(file)!r} does not exist: {how}")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{str(file)!r} holds a {type(state).__name__}, not a vgg19 state dict")  # noqa: TRY004
    features = {k[len(FEATURES_PREFIX) :]: v for k, v in state.items() if k.startswith(FEATURES_PREFIX)}
    other = sorted(k for k in state if not k.startswith(FEATURES_PREFIX) and not k.startswith("classifier."))
    if other:
        raise ValueError(f"{str(file)!r} is not a torchvision vgg19 state dict: unexpected keys {other[:5]}")
    net = Vgg19Features()
    try:
        net.features.load_state_dict(features, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{str(file)!r} does not match torchvision's vgg19 features layout: {err}") from err
    return net
