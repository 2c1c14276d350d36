"""Resizing of item arrays shared by the dataset families (images bilinear and anti-aliased, labels nearest)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(C, H, W)`` float32 values in ``[-1, 1]`` resized to ``(C, *size)``.

    Bilinear with anti-aliasing (``torch.nn.functional.interpolate``), clamped back
    to ``[-1, 1]``; returned unchanged when already of that size.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(image))[None], size=size, mode="bilinear",
                        align_corners=False, antialias=True)[0]
    return out.clamp(-1.0, 1.0).numpy()


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(C, H, W)`` uint8 label maps resized to ``(C, *size)`` by nearest neighbour."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(labels))[None].float(), size=size, mode="nearest")[0]
    return out.to(torch.uint8).numpy()
