"""One normalised volume through an image-to-image generator, axial slice by axial slice, batched.

The generator sees what it was trained on: if the run resized slices to
``image_size`` (the ``paired_phases`` spec), every slice is resized the same way
(bilinear, anti-aliased) and the output resized back to the stored grid;
otherwise slices are reflection-padded up to the generator's size multiple and
the output cropped back, so the stored ``(Y, X)`` grid is kept exactly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from breastflow.models.base import GanModel


def size_multiple(model: GanModel) -> int:
    """Height/width multiple the family's generator needs (its config's ``size_multiple``; 1 when it has none)."""
    # families without downsampling (the template) define no size_multiple: any size works
    multiple = getattr(model.config, "size_multiple", 1)
    return max(1, int(multiple))


def _to_model_grid(x: Tensor, image_size: int | None, multiple: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """``(B, C, H, W)`` -> what the generator takes, and the padding added (left, right, top, bottom)."""
    if image_size is not None:
        if x.shape[-2:] != (image_size, image_size):
            x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
        return x.clamp(-1.0, 1.0), (0, 0, 0, 0)
    h, w = x.shape[-2:]
    target_h = max(-(-h // multiple) * multiple, 2 * multiple if multiple > 1 else h)
    target_w = max(-(-w // multiple) * multiple, 2 * multiple if multiple > 1 else w)
    pad = ((target_w - w) // 2, target_w - w - (target_w - w) // 2, (target_h - h) // 2, target_h - h - (target_h - h) // 2)
    if any(pad):
        reflect = pad[0] < w and pad[1] < w and pad[2] < h and pad[3] < h
        x = F.pad(x, pad, mode="reflect" if reflect else "replicate")
    return x, pad


def _to_stored_grid(y: Tensor, shape: tuple[int, int], pad: tuple[int, int, int, int]) -> Tensor:
    """Generator output back on the stored ``(H, W)`` grid (crop the padding, or resize back)."""
    left, right, top, bottom = pad
    if any(pad):
        y = y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]
    if tuple(y.shape[-2:]) != shape:
        y = F.interpolate(y, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return y.clamp(-1.0, 1.0)


def generate_volume(model: GanModel, source: np.ndarray, out_channels: int, image_size: int | None = None,
                    batch: int = 8) -> np.ndarray:
    """Generator output for every axial slice of a normalised source volume.

    Args:
        model: a loaded image-to-image family (eval mode is set by its ``generate``).
        source: ``(Z, H, W)`` float32 in ``[-1, 1]`` (one input channel) or ``(Z, C, H, W)``.
        out_channels: channels ``K`` the generator returns (one per target series).
        image_size: the training ``image_size`` (slices resized to it and back), or ``None``.
        batch: slices per generator call.

    Returns:
        ``(K, Z, H, W)`` float32 in ``[-1, 1]``.

    Raises:
        ValueError: ``source`` is not 3-D/4-D, or the generator returns another channel count.
    """
    if source.ndim == 3:
        source = source[:, None]
    if source.ndim != 4:
        raise ValueError(f"source must be (Z, H, W) or (Z, C, H, W), got shape {source.shape}")
    z, _, h, w = source.shape
    multiple = size_multiple(model)
    out = np.empty((out_channels, z, h, w), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, z, batch):
            x = torch.from_numpy(np.ascontiguousarray(source[start:start + batch], dtype=np.float32))
            x, pad = _to_model_grid(x.to(model.device), image_size, multiple)
            y = model.generate(x)
            if y.shape[1] != out_channels:
                raise ValueError(f"the generator returns {y.shape[1]} channels, but {out_channels} target series "
                                 "are to be written (the checkpoint's dataset targets)")
            y = _to_stored_grid(y.float(), (h, w), pad)
            out[:, start:start + y.shape[0]] = y.permute(1, 0, 2, 3).cpu().numpy()
    return out
