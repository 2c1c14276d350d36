"""Leave-one-out 1-nearest-neighbour two-sample accuracy (paper 001, Sec. 3.3).

Real samples are labelled positive and synthetic ones negative (Lopez-Paz &
Oquab 2016; Xu et al. 2018). Every sample is classified by the label of its
nearest *other* sample in the union of both sets, and the accuracy is reported
on the real and on the synthetic set separately, and over both. Ideal
synthetic data gives 0.5 everywhere; 1.0 means the sets are separable; well
below 0.5 on the synthetic set points to copies of real samples.

Works on features (e.g. Inception pool features) or flattened pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow.metrics import names
from breastflow.metrics.knn import (
    DEFAULT_CHUNK_SIZE,
    as_feature_pair,
    nearest_neighbour,
)


@dataclass(frozen=True)
class NNAccuracy:
    """1-NN accuracies; fractions in ``[0, 1]``."""

    real: float
    fake: float
    overall: float
    n_real: int
    n_fake: int

    def to_dict(self) -> dict[str, float]:
        """Flat dict keyed by :mod:`breastflow.metrics.names`."""
        return {
            names.NN_ACCURACY_REAL: self.real,
            names.NN_ACCURACY_FAKE: self.fake,
            names.NN_ACCURACY: self.overall,
            names.NN_ACCURACY_GAP: abs(self.overall - 0.5),
        }


def nn_accuracy(real: np.ndarray, fake: np.ndarray, chunk_size: int = DEFAULT_CHUNK_SIZE) -> NNAccuracy:
    """Leave-one-out 1-NN two-sample accuracy.

    The nearest neighbour is searched in the concatenation ``[real, fake]``
    without the sample itself, Euclidean distance; ties go to the earlier
    sample in that concatenation.

    Args:
        real: ``(N, D)`` features or ``(N, ...)`` images (flattened).
        fake: ``(M, D)`` features or ``(M, ...)`` images, same ``D``.
        chunk_size: query rows per distance block (memory bound).

    Raises:
        ValueError: if a set is empty or holds NaNs, the dimensions differ,
            or both sets together have fewer than 3 samples.
    """
    r, f = as_feature_pair(real, fake)
    if r.shape[0] + f.shape[0] < 3:
        raise ValueError(f"1-NN accuracy needs at least 3 samples in total, got {r.shape[0] + f.shape[0]}")
    both = np.concatenate([r, f], axis=0)
    labels = np.concatenate([np.ones(r.shape[0], bool), np.zeros(f.shape[0], bool)])
    _, idx = nearest_neighbour(both, both, chunk_size=chunk_size, exclude_self=True)
    correct = labels[idx] == labels
    n = r.shape[0]
    return NNAccuracy(
        real=float(correct[:n].mean()),
        fake=float(correct[n:].mean()),
        overall=float(correct.mean()),
        n_real=n,
        n_fake=f.shape[0],
    )
