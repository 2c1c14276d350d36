"""Paired augmentation as paper 003 sec. 3.2.2: 90-degree rotation with p = 0.5, flips optional.

Every array of one item (image, target, mask) gets the *same* transform, so
pixels stay aligned. Draws are seeded per ``(seed, epoch, item index)``
(:func:`item_rng`): the same item in the same epoch is transformed the same
way in any worker process, on any run.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    """Augmentation probabilities (paper 003: ``rot90_p=0.5``, no flips) and seed.

    Attributes:
        rot90_p: probability of rotating by 90 degrees (counter-clockwise in the ``(H, W)`` plane).
        hflip_p: probability of a left-right flip (along W); vflip_p: of an up-down flip (along H).
        seed: base seed of the per-item draws.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rot90_p: float = Field(default=0.5, ge=0.0, le=1.0)
    hflip_p: float = Field(default=0.0, ge=0.0, le=1.0)
    vflip_p: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int = Field(default=0, ge=0)


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item in one epoch (independent of worker and order)."""
    return np.random.default_rng([seed, epoch, index])


def augment_arrays(arrays: list[np.ndarray], config: AugmentConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Apply one random transform identically to every array.

    Args:
        arrays: ``(C, H, W)`` arrays of one item (channels may differ, ``H, W`` must not).
        config: probabilities.
        rng: e.g. :func:`item_rng`; exactly three numbers are drawn per call.

    Returns:
        The transformed arrays, C-contiguous (``(C, W, H)`` after a rotation of a non-square item).

    Raises:
        ValueError: the arrays do not share ``(H, W)``.
    """
    if len({a.shape[-2:] for a in arrays}) > 1:
        raise ValueError(f"augmentation needs arrays of one (H, W), got {[a.shape for a in arrays]}")
    rotate, hflip, vflip = (rng.random(3) < np.array([config.rot90_p, config.hflip_p, config.vflip_p])).tolist()
    out = []
    for a in arrays:
        if rotate:
            a = np.rot90(a, k=1, axes=(-2, -1))
        if hflip:
            a = a[..., :, ::-1]
        if vflip:
            a = a[..., ::-1, :]
        out.append(np.ascontiguousarray(a))
    return out
