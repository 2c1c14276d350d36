"""The feature-extractor contract (STYLE habit 1) and its registry.

A Fréchet distance compares the statistics of features of two image sets.
Every extractor is a :class:`FeatureExtractor` registered by name in
:data:`EXTRACTORS`; :func:`build_extractor` looks it up (unknown names fail
with the nearest valid ones).

A subclass supplies:

* ``name`` (class attribute): its registry name, e.g. ``"inception"``.
* ``native_size``: the square input size of the network (e.g. 299), used
  when the protocol does not fix one.
* ``channels``: input channels the network wants (1 or 3).
* ``input_range``: ``(low, high)`` the network expects; the base class maps
  the protocol's ``[0, 1]`` output onto it.
* ``__init__(self, weights: Path | None, device: torch.device)``: load the
  network, failing with :class:`WeightsNotFoundError` when a needed file is
  absent.
* ``weights_id(self) -> str``: a content hash of the weights (cache key).
* ``features_from_batch(self, x) -> Tensor``: ``(B, channels, S, S)`` in
  ``input_range`` -> ``(B, D)``.

Optionally, an extractor that needs set-level post-processing (the Fréchet
Radiomics Distance normalises features jointly and log-transforms the result)
overrides :meth:`FeatureExtractor.normalize_sets` and
:meth:`FeatureExtractor.finalize_distance`, and one that does not run a
network on resized batches overrides :meth:`FeatureExtractor.extract`.

Minimal example to copy: :class:`breastflow.metrics.features.inception.InceptionExtractor`.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from breastflow.metrics.protocols import Protocol, apply_protocol
from breastflow.registry import Registry


class WeightsNotFoundError(FileNotFoundError):
    """A weight file an extractor or LPIPS needs is not on disk."""


def resolve_weights(weights: Path | str | None, env_var: str, what: str, hint: str) -> Path:
    """Return the weight file from ``weights`` or ``$env_var``.

    Raises:
        WeightsNotFoundError: naming the file (or its absence) and how to provide it.
    """
    candidate = weights if weights is not None else os.environ.get(env_var)
    if candidate is None:
        raise WeightsNotFoundError(
            f"{what}: no weight file configured. Pass weights=PATH or set ${env_var}. {hint}"
        )
    path = Path(candidate).expanduser()
    if not path.is_file():
        source = "argument weights" if weights is not None else f"${env_var}"
        raise WeightsNotFoundError(f"{what}: weight file {str(path)!r} (from {source}) does not exist. {hint}")
    return path


_HASHES: dict[tuple[str, int, float], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's content, memoised per (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


class FeatureExtractor(ABC):
    """Base class: images ``(N, 1 or 3, H, W)`` -> features ``(N, D)`` float64."""

    name: ClassVar[str]
    native_size: ClassVar[int]
    channels: ClassVar[int] = 3
    input_range: ClassVar[tuple[float, float]] = (0.0, 1.0)

    device: torch.device

    @abstractmethod
    def weights_id(self) -> str:
        """Content hash identifying the weights (part of the feature-cache key)."""

    @abstractmethod
    def features_from_batch(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, channels, S, S)`` float32 in ``input_range`` -> ``(B, D)``."""

    def extract(
        self,
        images: torch.Tensor | np.ndarray,
        protocol: Protocol,
        data_range: float | None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Preprocess with ``protocol`` and run the network in batches.

        Args:
            images: ``(N, H, W)`` or ``(N, 1 or 3, H, W)``, any real dtype.
            protocol: preprocessing protocol.
            data_range: stored intensity range (see :func:`apply_protocol`).
            batch_size: images per forward pass.

        Returns:
            ``(N, D)`` float64 features.
        """
        images = as_image_batch(images)
        lo, hi = self.input_range
        out = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                x = apply_protocol(images[start : start + batch_size], protocol, self.native_size, data_range, self.channels)
                x = x.to(self.device) * (hi - lo) + lo
                out.append(self.features_from_batch(x).to(torch.float64).cpu())
        return torch.cat(out).numpy()

    def normalize_sets(self, real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Set-level feature normalisation before the statistics (identity by default)."""
        return real, fake

    def finalize_distance(self, squared_distance: float) -> float:
        """Map the squared Fréchet distance to the reported value (identity by default)."""
        return squared_distance


def as_image_batch(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(N, H, W)`` / ``(N, C, H, W)`` array or tensor -> ``(N, C, H, W)`` tensor (no copy when possible).

    Raises:
        ValueError: wrong rank, zero images.
    """
    if isinstance(images, np.ndarray):
        if images.dtype in (np.uint16, np.uint32):
            images = images.astype(np.int64)
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("image set is empty (N = 0)")
    return images


#: Registry of feature-extractor classes, filled by the modules of this package.
EXTRACTORS: Registry[type[FeatureExtractor]] = Registry("feature extractor")


def build_extractor(
    name: str, weights: Path | str | None = None, device: torch.device | str | None = None
) -> FeatureExtractor:
    """Instantiate the registered extractor ``name``.

    Raises:
        RegistryError: unknown name (with the nearest valid names).
        WeightsNotFoundError: a required weight file is missing.
    """
    cls = EXTRACTORS.get(name)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return cls(Path(weights) if weights is not None else None, dev)  # type: ignore[call-arg]
