"""Chunked Euclidean nearest-neighbour primitives shared by the set metrics.

1-NN accuracy, precision/recall, density/coverage and the privacy distances
all reduce to "distance from each query row to a reference set". The full
``(N, M)`` distance matrix of a few thousand 2048-d features fits in memory,
that of flattened 512x512 images does not, so every helper here walks the
query rows in chunks and keeps at most ``(chunk_size, M)`` distances alive.
Distances are computed in float64 as ``sqrt(|a|^2 + |b|^2 - 2 a.b)`` clipped
at zero.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

DEFAULT_CHUNK_SIZE = 512


def as_feature_matrix(x: np.ndarray, name: str) -> np.ndarray:
    """Validate a feature set and return it as a float64 ``(N, D)`` matrix.

    Args:
        x: ``(N, D)`` features, or ``(N, ...)`` images that are flattened.
        name: what the set is called in error messages, e.g. ``"real"``.

    Raises:
        ValueError: if the set is empty, has no feature dimension, or holds
            NaN / infinite values.
    """
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} set must be (N, D) features or (N, ...) images, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} set is empty")
    arr = arr.reshape(arr.shape[0], -1).astype(np.float64, copy=False)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} set has zero-length feature vectors")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} set has NaN or infinite values in row(s) {np.flatnonzero(bad)[:10].tolist()}")
    return arr


def as_feature_pair(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`as_feature_matrix` of a real and a synthetic set that must share their feature dimension.

    Args:
        real: ``(N, D)`` features or ``(N, ...)`` images (flattened).
        fake: ``(M, D)`` features or ``(M, ...)`` images, same ``D``.

    Returns:
        ``(N, D)`` and ``(M, D)`` float64 matrices.

    Raises:
        ValueError: see :func:`as_feature_matrix`; the dimensions differ.
    """
    r = as_feature_matrix(real, "real")
    f = as_feature_matrix(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake feature dimensions differ: {r.shape[1]} vs {f.shape[1]}")
    return r, f


def distance_blocks(
    query: np.ndarray, reference: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE, exclude_self: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)`` with ``block[i, j] = |query[start + i] - reference[j]|``.

    Args:
        query: ``(N, D)`` float64.
        reference: ``(M, D)`` float64.
        chunk_size: query rows per block.
        exclude_self: ``query`` is ``reference``; the diagonal is set to +inf
            (leave-one-out).

    Raises:
        ValueError: if the feature dimensions differ, or ``exclude_self`` with
            sets of different sizes.
    """
    if query.shape[1] != reference.shape[1]:
        raise ValueError(f"feature dimensions differ: {query.shape[1]} vs {reference.shape[1]}")
    if exclude_self and query.shape[0] != reference.shape[0]:
        raise ValueError("exclude_self needs the query set to be the reference set")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ref_sq = np.einsum("ij,ij->i", reference, reference)
    for start in range(0, query.shape[0], chunk_size):
        q = query[start : start + chunk_size]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * (q @ reference.T)
        block = np.sqrt(np.maximum(d2, 0.0))
        if exclude_self:
            rows = np.arange(q.shape[0])
            block[rows, start + rows] = np.inf
        yield start, block


def nearest_neighbour(
    query: np.ndarray, reference: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of each query row's nearest reference row.

    Ties go to the lowest reference index.

    Returns:
        ``(distances (N,), indices (N,))``.
    """
    dist = np.empty(query.shape[0])
    idx = np.empty(query.shape[0], dtype=np.int64)
    for start, block in distance_blocks(query, reference, chunk_size, exclude_self):
        j = np.argmin(block, axis=1)
        idx[start : start + block.shape[0]] = j
        dist[start : start + block.shape[0]] = block[np.arange(block.shape[0]), j]
    return dist, idx


def kth_neighbour_distance(x: np.ndarray, k: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """Distance from each row of ``x`` to its ``k``-th nearest other row.

    Args:
        x: ``(N, D)`` float64.
        k: neighbour rank, 1 = nearest other point.

    Returns:
        ``(N,)`` radii.

    Raises:
        ValueError: if ``k`` is not in ``[1, N - 1]``.
    """
    if not 1 <= k <= x.shape[0] - 1:
        raise ValueError(f"k={k} nearest neighbours need at least {k + 1} samples, got {x.shape[0]}")
    out = np.empty(x.shape[0])
    for start, block in distance_blocks(x, x, chunk_size, exclude_self=True):
        out[start : start + block.shape[0]] = np.partition(block, k - 1, axis=1)[:, k - 1]
    return out


def count_in_balls(
    query: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> np.ndarray:
    """For each query row, how many closed balls ``B(centres[j], radii[j])`` contain it.

    Returns:
        ``(N,)`` int64 counts.
    """
    counts = np.empty(query.shape[0], dtype=np.int64)
    for start, block in distance_blocks(query, centres, chunk_size):
        counts[start : start + block.shape[0]] = (block <= radii[None, :]).sum(axis=1)
    return counts
