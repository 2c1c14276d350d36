"""``extract_features``: images -> features with a registered extractor and a protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from breastflow.metrics.features.base import build_extractor
from breastflow.metrics.protocols import Protocol, get_protocol


def extract_features(
    images: torch.Tensor | np.ndarray,
    extractor: str,
    protocol: Protocol | str = "standard",
    batch_size: int = 32,
    device: torch.device | str | None = None,
    weights: Path | str | None = None,
    data_range: float | None = None,
) -> np.ndarray:
    """Extract features of an image set.

    Args:
        images: ``(N, H, W)`` or ``(N, 1 or 3, H, W)``, any real dtype.
        extractor: registry name (``inception``, ``radimagenet``, ``radiomics``, ``radiomics-v0``).
        protocol: preprocessing protocol or its registry name.
        batch_size: images per forward pass.
        device: torch device (default CPU).
        weights: weight file for extractors that take one.
        data_range: stored intensity range; required by the ``standard`` protocol.

    Returns:
        ``(N, D)`` float64 features.

    Raises:
        RegistryError: unknown extractor or protocol; WeightsNotFoundError:
        missing weight file; ValueError: bad images.
    """
    net = build_extractor(extractor, weights=weights, device=device)
    return net.extract(images, get_protocol(protocol), data_range, batch_size)
