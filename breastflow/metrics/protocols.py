"""Named, recorded preprocessing protocols for feature extraction.

A protocol says how stored images become network input: the intensity window,
the resize size and filter, and channel replication. It is a frozen pydantic
model so it can be saved beside every result (``protocol.model_dump_json()``)
and hashed into the feature-cache key.

* ``standard``: intensity window ``[0, data_range]`` -> ``[0, 1]`` (no
  per-image rescaling), bilinear resize (antialiased) to the extractor's
  native input size (299 for Inception, 224 for RadImageNet), grey channel
  replicated to RGB.
* ``paper-003``: the reference pipeline's choices for comparable numbers:
  per-image min-max to ``[0, 1]``, 8-bit quantisation, bilinear resize to
  224x224 (then to the extractor's native size), channel replication. Its bugs
  (uint8 wrap-around, binarised LPIPS input, JPEG) are not reproduced.
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from breastflow.registry import Registry


class IntensityWindow(str, Enum):
    """How stored intensities map to ``[0, 1]``."""

    DATA_RANGE = "data_range"  # x / data_range, clipped to [0, 1]
    PER_IMAGE_MINMAX = "per_image_minmax"  # (x - min) / (max - min) per image


class ResizeFilter(str, Enum):
    """Interpolation filter used to resize to the network input size."""

    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    NEAREST = "nearest"


class ChannelMode(str, Enum):
    """How single-channel images become the network's channels."""

    REPLICATE = "replicate"


class Protocol(BaseModel):
    """A preprocessing protocol (immutable, JSON-serialisable).

    Attributes:
        name: registry name, recorded with results.
        intensity: intensity window.
        size: square resize size before the extractor; ``None`` = the
            extractor's native input size.
        resize_filter: interpolation filter.
        antialias: low-pass before downsampling (bilinear/bicubic only).
        quantize_8bit: round the ``[0, 1]`` image to 256 levels (paper-003).
        channels: channel handling.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    intensity: IntensityWindow = IntensityWindow.DATA_RANGE
    size: int | None = Field(default=None, gt=0)
    resize_filter: ResizeFilter = ResizeFilter.BILINEAR
    antialias: bool = True
    quantize_8bit: bool = False
    channels: ChannelMode = ChannelMode.REPLICATE


PROTOCOLS: Registry[Protocol] = Registry("preprocessing protocol")
PROTOCOLS.add("standard", Protocol(name="standard"))
PROTOCOLS.add(
    "paper-003",
    Protocol(
        name="paper-003",
        intensity=IntensityWindow.PER_IMAGE_MINMAX,
        size=224,
        quantize_8bit=True,
    ),
)


def get_protocol(protocol: Protocol | str) -> Protocol:
    """Resolve a protocol name (registry lookup) or pass a :class:`Protocol` through."""
    return protocol if isinstance(protocol, Protocol) else PROTOCOLS.get(protocol)


def _resize(x: torch.Tensor, size: int, protocol: Protocol) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (size, size):
        return x
    mode = protocol.resize_filter.value
    if protocol.resize_filter is ResizeFilter.NEAREST:
        return F.interpolate(x, size=(size, size), mode=mode)
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False, antialias=protocol.antialias)


def apply_protocol(
    images: torch.Tensor,
    protocol: Protocol,
    native_size: int,
    data_range: float | None,
    channels: int = 3,
) -> torch.Tensor:
    """Preprocess a batch for an extractor.

    Args:
        images: ``(B, C, H, W)`` with C = 1 or 3, any real dtype.
        protocol: the protocol to apply.
        native_size: the extractor's input size (used when ``protocol.size``
            is ``None`` and after a paper-003 intermediate resize).
        data_range: upper end of the stored intensity range; required for
            :attr:`IntensityWindow.DATA_RANGE`.
        channels: channels the extractor wants (1 or 3).

    Returns:
        ``(B, channels, native_size, native_size)`` float32 in ``[0, 1]``.

    Raises:
        ValueError: missing ``data_range``, bad channel count, NaNs.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (B, 1 or 3, H, W), got {tuple(images.shape)}")
    x = images.to(torch.float32) if images.dtype != torch.float64 else images
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf values")
    if protocol.intensity is IntensityWindow.DATA_RANGE:
        if data_range is None or not data_range > 0:
            raise ValueError(
                f"protocol {protocol.name!r} windows intensities by the data range: pass data_range "
                "(e.g. 255 for 8-bit, 65535 for 16-bit, 1.0 for [0, 1] floats)"
            )
        x = (x / float(data_range)).clamp(0, 1)
    else:
        lo = x.flatten(1).amin(1).view(-1, 1, 1, 1)
        hi = x.flatten(1).amax(1).view(-1, 1, 1, 1)
        x = (x - lo) / (hi - lo).clamp(min=torch.finfo(x.dtype).tiny)
    if protocol.quantize_8bit:
        x = torch.round(x * 255) / 255
    x = x.to(torch.float32)
    if protocol.size is not None:
        x = _resize(x, protocol.size, protocol)
    x = _resize(x, native_size, protocol).clamp(0, 1)
    if x.shape[1] != channels:
        if x.shape[1] == 1 and protocol.channels is ChannelMode.REPLICATE:
            x = x.expand(-1, channels, -1, -1)
        elif channels == 1:
            x = x.mean(1, keepdim=True)
    return x.contiguous()
