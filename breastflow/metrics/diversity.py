"""Fidelity and diversity of a synthetic set from k-NN balls in feature space.

* Improved precision / recall (Kynkäänniemi et al. 2019, Eq. 1-3): the real
  manifold is the union of closed balls ``B(r_i, NND_k(r_i))`` around every
  real feature, with ``NND_k`` the distance to the k-th nearest other real
  feature. Precision is the share of synthetic features inside the real
  manifold; recall the share of real features inside the synthetic manifold
  (balls built the same way on the synthetic set).
* Density / coverage (Naeem et al. 2020, Eq. 5-6), built on the real balls
  only: density ``= 1/(kM) sum_j sum_i 1[f_j in B(r_i, NND_k(r_i))]``
  (can exceed 1), coverage ``= 1/N sum_i 1[exists j: f_j in B(r_i, NND_k(r_i))]``.

Balls are closed (``<=``), distances Euclidean in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow.metrics import names
from breastflow.metrics.knn import (
    DEFAULT_CHUNK_SIZE,
    as_feature_pair,
    count_in_balls,
    kth_neighbour_distance,
    nearest_neighbour,
)

#: Kynkäänniemi et al. use k = 3 for precision / recall.
DEFAULT_K_PRECISION_RECALL = 3
#: Naeem et al. use k = 5 for density / coverage.
DEFAULT_K_DENSITY_COVERAGE = 5


@dataclass(frozen=True)
class PrecisionRecall:
    """Improved precision and recall, fractions in ``[0, 1]``."""

    precision: float
    recall: float
    k: int

    def to_dict(self) -> dict[str, float]:
        return {names.PRECISION: self.precision, names.RECALL: self.recall}


@dataclass(frozen=True)
class DensityCoverage:
    """Density (``>= 0``, 1 for matching distributions) and coverage (``[0, 1]``)."""

    density: float
    coverage: float
    k: int

    def to_dict(self) -> dict[str, float]:
        return {names.DENSITY: self.density, names.COVERAGE: self.coverage}


def _validated(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    r, f = as_feature_pair(real, fake)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return r, f


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K_PRECISION_RECALL, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Args:
        real: ``(N, D)`` real features (or images, flattened).
        fake: ``(M, D)`` synthetic features.
        k: neighbour rank defining each ball's radius.

    Raises:
        ValueError: if either set has ``<= k`` samples, holds NaNs, or the
            feature dimensions differ.
    """
    r, f = _validated(real, fake, k)
    real_radii = kth_neighbour_distance(r, k, chunk_size)
    fake_radii = kth_neighbour_distance(f, k, chunk_size)
    precision = float((count_in_balls(f, r, real_radii, chunk_size) > 0).mean())
    recall = float((count_in_balls(r, f, fake_radii, chunk_size) > 0).mean())
    return PrecisionRecall(precision=precision, recall=recall, k=k)


def density_coverage(
    real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K_DENSITY_COVERAGE, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> DensityCoverage:
    """Density and coverage (Naeem et al. 2020).

    Args:
        real: ``(N, D)`` real features.
        fake: ``(M, D)`` synthetic features.
        k: neighbour rank defining each real ball's radius.

    Raises:
        ValueError: if the real set has ``<= k`` samples, a set holds NaNs or
            the feature dimensions differ.
    """
    r, f = _validated(real, fake, k)
    real_radii = kth_neighbour_distance(r, k, chunk_size)
    density = float(count_in_balls(f, r, real_radii, chunk_size).sum() / (k * f.shape[0]))
    nearest_fake, _ = nearest_neighbour(r, f, chunk_size)
    coverage = float((nearest_fake <= real_radii).mean())
    return DensityCoverage(density=density, coverage=coverage, k=k)
