"""Precision/recall and density/coverage against brute-force loops on small sets."""

from __future__ import annotations

import numpy as np
import pytest

from breastflow.metrics.diversity import density_coverage, precision_recall


def kth_radius(points: np.ndarray, i: int, k: int) -> float:
    d = sorted(float(np.linalg.norm(points[i] - points[j])) for j in range(len(points)) if j != i)
    return d[k - 1]


def brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    rr = [kth_radius(real, i, k) for i in range(len(real))]
    fr = [kth_radius(fake, j, k) for j in range(len(fake))]

    def inside(x, centres, radii):
        return [float(np.linalg.norm(x - c)) <= r for c, r in zip(centres, radii)]

    precision = np.mean([any(inside(f, real, rr)) for f in fake])
    recall = np.mean([any(inside(r, fake, fr)) for r in real])
    density = sum(sum(inside(f, real, rr)) for f in fake) / (k * len(fake))
    coverage = np.mean([any(float(np.linalg.norm(f - real[i])) <= rr[i] for f in fake) for i in range(len(real))])
    return precision, recall, density, coverage


@pytest.mark.parametrize("n_real, n_fake, dim, shift, scale, k", [
    (25, 20, 3, 0.0, 1.0, 3), (30, 30, 4, 0.8, 1.0, 3), (20, 35, 2, 0.0, 0.3, 5), (15, 15, 6, 0.0, 2.0, 2),
])
def test_matches_brute_force(n_real, n_fake, dim, shift, scale, k):
    rng = np.random.default_rng(n_real + 7 * n_fake + dim)
    real = rng.normal(size=(n_real, dim))
    fake = rng.normal(shift, scale, size=(n_fake, dim))
    pr = precision_recall(real, fake, k=k, chunk_size=7)
    dc = density_coverage(real, fake, k=k, chunk_size=7)
    assert (pr.precision, pr.recall, dc.density, dc.coverage) == pytest.approx(brute_force(real, fake, k))


def test_expected_behaviour_of_mode_collapse_and_disjoint_sets():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(200, 2))
    collapsed = rng.normal(0.0, 0.05, size=(200, 2))  # all fakes near the mode
    pr = precision_recall(real, collapsed)
    dc = density_coverage(real, collapsed)
    assert pr.precision > 0.95 and pr.recall < 0.3
    assert dc.coverage < 0.3 and dc.density > 1.0
    far = precision_recall(real, real + 50.0)
    assert (far.precision, far.recall) == (0.0, 0.0)
    same = density_coverage(real, real.copy())
    assert same.coverage == 1.0


def test_too_few_samples_for_k():
    with pytest.raises(ValueError, match="k=3 nearest neighbours need at least 4 samples, got 3"):
        precision_recall(np.zeros((3, 2)), np.ones((10, 2)))
