"""Content-keyed cache of real-set features (STYLE habit 7).

A sweep over checkpoints compares many synthetic sets with one real set; the
real features are extracted once and reused. The key is the sha256 of a
canonical JSON of everything that determines the features: the dataset's
content hash or version, the extractor name, the weight file's content hash,
the preprocessing protocol and the data range -- never a user-chosen name.

Entries are ``<root>/<key>.npy`` (plus ``<key>.json`` with the key's parts),
written to a temporary name and renamed, so readers never see partial files.
``root`` is a local directory or any fsspec URL (``s3://bucket/prefix``).
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable

import fsspec
import numpy as np

from breastflow.metrics.protocols import Protocol


def content_key(dataset: str, extractor: str, weights: str, protocol: Protocol, data_range: float | None) -> str:
    """sha256 hex key of the feature-determining inputs.

    Args:
        dataset: content hash or version of the real dataset (non-empty).
        extractor: extractor registry name.
        weights: content hash of the extractor's weights.
        protocol: preprocessing protocol.
        data_range: intensity range used by the protocol.

    Raises:
        ValueError: empty dataset key.
    """
    if not dataset:
        raise ValueError("the dataset key must be a non-empty content hash or version")
    parts = {
        "dataset": dataset,
        "extractor": extractor,
        "weights": weights,
        "protocol": protocol.model_dump(mode="json"),
        "data_range": data_range,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class FeatureCache:
    """Feature arrays stored by content key under ``root`` (local path or fsspec URL).

    Args:
        root: directory or URL; created if missing.
        storage_options: fsspec options (e.g. ``{"client_kwargs": {"endpoint_url": ...}}``).

    Attributes:
        hits, misses: counters of :meth:`get_or_compute` outcomes.
    """

    def __init__(self, root: str, storage_options: dict | None = None) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(str(root), **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str, suffix: str) -> str:
        if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"cache keys are sha256 hex digests, got {key!r}")
        return f"{self.root}/{key}{suffix}"

    def get(self, key: str) -> np.ndarray | None:
        """The stored array for ``key``, or ``None``."""
        path = self._path(key, ".npy")
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as f:
            return np.load(io.BytesIO(f.read()), allow_pickle=False)

    def put(self, key: str, features: np.ndarray, meta: dict | None = None) -> None:
        """Store ``features`` under ``key`` atomically (temporary file + rename)."""
        buf = io.BytesIO()
        np.save(buf, np.asarray(features), allow_pickle=False)
        for suffix, payload in ((".json", json.dumps(meta or {}, sort_keys=True).encode()), (".npy", buf.getvalue())):
            final = self._path(key, suffix)
            tmp = f"{self.root}/.tmp-{uuid.uuid4().hex}{suffix}"
            with self.fs.open(tmp, "wb") as f:
                f.write(payload)
            self.fs.mv(tmp, final)

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array, or run ``compute()`` once and store its result."""
        found = self.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        features = compute()
        self.put(key, features, {"shape": list(np.shape(features))})
        return features
