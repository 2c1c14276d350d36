"""1-NN two-sample accuracy against a brute-force leave-one-out loop."""

from __future__ import annotations

import numpy as np
import pytest

from breastflow.metrics import names
from breastflow.metrics.nn_accuracy import nn_accuracy


def brute_force(real: np.ndarray, fake: np.ndarray) -> tuple[float, float, float]:
    pts = [(p, True) for p in real] + [(p, False) for p in fake]
    correct = []
    for i, (p, label) in enumerate(pts):
        best, best_label = np.inf, None
        for j, (q, other) in enumerate(pts):
            if i == j:
                continue
            d = float(np.sqrt(((p - q) ** 2).sum()))
            if d < best:  # strict: ties keep the earlier sample
                best, best_label = d, other
        correct.append(best_label == label)
    c = np.asarray(correct)
    n = len(real)
    return c[:n].mean(), c[n:].mean(), c.mean()


@pytest.mark.parametrize("n_real, n_fake, dim, shift", [(12, 9, 3, 0.0), (20, 20, 5, 0.7), (7, 15, 2, 2.0), (1, 2, 4, 0.0)])
def test_matches_brute_force(n_real, n_fake, dim, shift):
    rng = np.random.default_rng(n_real * 100 + n_fake)
    real = rng.normal(size=(n_real, dim))
    fake = rng.normal(shift, 1.0, size=(n_fake, dim))
    got = nn_accuracy(real, fake, chunk_size=4)
    ref = brute_force(real, fake)
    assert (got.real, got.fake, got.overall) == pytest.approx(ref)
    assert got.to_dict()[names.NN_ACCURACY_GAP] == pytest.approx(abs(ref[2] - 0.5))


def test_known_extremes():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 4))
    far = nn_accuracy(real, real + 100.0)
    assert (far.real, far.fake, far.overall) == (1.0, 1.0, 1.0)
    # exact copies: every sample's nearest other sample is its copy with the other label
    copies = nn_accuracy(real, real.copy())
    assert (copies.real, copies.fake) == (0.0, 0.0)


def test_images_are_flattened():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(6, 5, 5)), rng.normal(size=(6, 5, 5))
    assert nn_accuracy(real, fake) == nn_accuracy(real.reshape(6, -1), fake.reshape(6, -1))


@pytest.mark.parametrize(
    "real, fake, match",
    [
        (np.zeros((0, 3)), np.zeros((4, 3)), "real set is empty"),
        (np.zeros((3, 3)), np.zeros((4, 2)), "dimensions differ"),
        (np.array([[0.0, np.nan]]), np.zeros((4, 2)), r"NaN or infinite values in row\(s\) \[0\]"),
        (np.zeros((1, 2)), np.zeros((1, 2)), "at least 3 samples"),
    ],
)
def test_errors(real, fake, match):
    with pytest.raises(ValueError, match=match):
        nn_accuracy(real, fake)
