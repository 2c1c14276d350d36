"""Fréchet distance: equals an independent scipy reference; clear errors on bad sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from breastflow.metrics.frechet import (
    features_to_frechet,
    features_to_statistics,
    frechet_distance,
    statistics_to_frechet,
)


def scipy_reference(f1: np.ndarray, f2: np.ndarray) -> float:
    """The classic pytorch-fid / TTUR formula with scipy.linalg.sqrtm."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# (n1, n2, dim, mean shift, scale of set 2)
CASES = [(200, 150, 8, 0.5, 1.0), (500, 400, 64, 0.1, 1.5), (100, 120, 32, 0.0, 0.7), (300, 300, 128, 2.0, 1.0)]


@pytest.mark.parametrize(("n1", "n2", "dim", "shift", "scale"), CASES)
def test_equals_scipy_reference(n1, n2, dim, shift, scale):
    rng = np.random.default_rng(dim)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    f1 = rng.normal(size=(n1, dim)) @ mix
    f2 = (rng.normal(size=(n2, dim)) @ mix) * scale + shift
    ref = scipy_reference(f1, f2)
    assert statistics_to_frechet(*features_to_statistics(f1), *features_to_statistics(f2)) == pytest.approx(ref, rel=1e-6)
    assert features_to_frechet(f1, f2) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize(("n1", "n2", "dim"), [(5, 7, 256), (30, 20, 384), (3, 4, 300)])
def test_sample_space_route_equals_scipy_reference(n1, n2, dim):
    rng = np.random.default_rng(n1)
    f1, f2 = rng.normal(size=(n1, dim)), rng.gamma(2.0, size=(n2, dim))
    assert features_to_frechet(f1, f2) == pytest.approx(scipy_reference(f1, f2), rel=1e-6)


def test_rank_deficient_covariances_stay_finite_and_match():
    rng = np.random.default_rng(3)
    f1, f2 = rng.normal(size=(20, 64)), rng.normal(size=(25, 64)) + 0.3  # N < D: singular covariances
    ours = statistics_to_frechet(*features_to_statistics(f1), *features_to_statistics(f2))
    assert np.isfinite(ours)
    assert ours == pytest.approx(scipy_reference(f1, f2), rel=1e-6)


def test_identical_sets_give_zero():
    f = np.random.default_rng(0).normal(size=(50, 16))
    assert statistics_to_frechet(*features_to_statistics(f), *features_to_statistics(f)) == pytest.approx(0, abs=1e-9)


BAD = [
    (np.zeros((1, 4)), "at least 2 samples"),
    (np.zeros((0, 4)), "at least 2 samples"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
    (np.zeros(5), "2-D"),
]


@pytest.mark.parametrize(("features", "message"), BAD)
def test_bad_feature_sets(features, message):
    with pytest.raises(ValueError, match=message):
        features_to_statistics(features)


def test_statistics_shape_mismatch():
    with pytest.raises(ValueError, match="do not match"):
        statistics_to_frechet(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_image_sets_too_small_or_empty():
    imgs = np.random.default_rng(0).integers(0, 255, (3, 32, 32)).astype(np.uint8)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(imgs, imgs[:1], extractor="inception", data_range=255)
    with pytest.raises(ValueError, match="empty"):
        frechet_distance(imgs, imgs[:0], extractor="inception", data_range=255)
    with pytest.raises(ValueError, match="data_range"):
        frechet_distance(imgs, imgs, extractor="inception")
