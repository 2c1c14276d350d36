"""Sliced Wasserstein distance: pyramid vs an independent filter, Gaussian closed forms, ordering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln

from breastflow.metrics import names
from breastflow.metrics.swd import (
    DescriptorNormalisation,
    SWDConfig,
    laplacian_pyramid,
    pyr_down,
    pyr_up,
    sliced_wasserstein,
    sliced_wasserstein_distance,
)

BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def pyr_down_loops(img: np.ndarray) -> np.ndarray:
    """Reference: reflect-pad by 2 (cv2 BORDER_REFLECT_101 = scipy 'mirror') and sum the 5x5 window."""
    p = np.pad(img, 2, mode="reflect")
    h, w = img.shape
    out = np.zeros((h, w))
    for dy in range(5):
        for dx in range(5):
            out += BINOMIAL[dy, dx] * p[dy : dy + h, dx : dx + w]
    return out[::2, ::2]


@pytest.mark.parametrize("shape", [(16, 16), (20, 13)])
def test_pyr_down_matches_loop_reference(shape):
    img = np.random.default_rng(0).normal(size=shape)
    assert pyr_down(img[None, None])[0, 0] == pytest.approx(pyr_down_loops(img), abs=1e-12)


def test_laplacian_pyramid_reconstructs_input():
    img = np.random.default_rng(1).normal(size=(2, 1, 64, 48))
    pyr = laplacian_pyramid(img, 3)
    assert [p.shape[2:] for p in pyr] == [(64, 48), (32, 24), (16, 12)]
    rec = pyr[-1]
    for level in reversed(pyr[:-1]):
        rec = level + pyr_up(rec, level.shape[2:])
    assert rec == pytest.approx(img, abs=1e-12)
    # the band-pass levels of a constant image are zero
    flat = laplacian_pyramid(np.full((1, 1, 32, 32), 3.0), 2)
    assert np.abs(flat[0]).max() < 1e-12


def mean_abs_projection(dim: int) -> float:
    """E|theta_1| for theta uniform on the unit sphere in R^dim."""
    return float(np.exp(gammaln(dim / 2) - gammaln((dim + 1) / 2)) / np.sqrt(np.pi))


@pytest.mark.parametrize("dim", [2, 8, 49])
def test_sliced_w1_of_shifted_gaussians_has_closed_form(dim):
    # N(0, I) vs N(mu, I): each projection on theta is W1(N(0,1), N(theta.mu, 1)) = |theta.mu|
    rng = np.random.default_rng(dim)
    mu = np.zeros(dim)
    mu[0] = 4.0
    a = rng.normal(size=(4000, dim))
    b = rng.normal(size=(4000, dim)) + mu
    got = sliced_wasserstein(a, b, 2, 1024, np.random.default_rng(0))
    assert got == pytest.approx(4.0 * mean_abs_projection(dim), rel=0.05)


def test_sliced_w1_of_scaled_gaussians_has_closed_form():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(8000, 10)), 2.0 * rng.normal(size=(8000, 10))
    # every projection: W1(N(0,1), N(0,4)) = |1 - 2| * E|Z| = sqrt(2/pi)
    assert sliced_wasserstein(a, b, 2, 64, np.random.default_rng(0)) == pytest.approx(np.sqrt(2 / np.pi), rel=0.03)


def textured(rng: np.random.Generator, n: int, noise: float) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.sin(xx / 3.0 + rng.uniform(0, 6, (n, 1, 1))) * np.cos(yy / 5.0)
    return base + noise * rng.normal(size=(n, 64, 64))


def test_swd_orders_sets_by_distortion_and_is_deterministic():
    rng = np.random.default_rng(2)
    real = textured(rng, 24, 0.05)
    cfg = SWDConfig(nhoods_per_image=64, dir_repeats=2, dirs_per_repeat=64, seed=3)
    similar = sliced_wasserstein_distance(real, textured(rng, 24, 0.05), cfg)
    noisy = sliced_wasserstein_distance(real, textured(rng, 24, 0.5), cfg)
    very_noisy = sliced_wasserstein_distance(real, textured(rng, 24, 2.0), cfg)
    assert list(similar.per_level) == [64, 32, 16]
    assert similar.mean < noisy.mean < very_noisy.mean
    assert similar.per_level[64] < noisy.per_level[64] < very_noisy.per_level[64]
    again = sliced_wasserstein_distance(real, textured(np.random.default_rng(2), 24, 0.05), cfg)
    assert sliced_wasserstein_distance(real, textured(np.random.default_rng(2), 24, 0.05), cfg) == again
    d = noisy.to_dict()
    assert d[names.SWD] == pytest.approx(np.mean([d["swd_64"], d["swd_32"], d["swd_16"]]))


def test_real_reference_normalisation_sees_brightness_shift_per_set_does_not():
    rng = np.random.default_rng(4)
    real = textured(rng, 16, 0.1)
    fake = 3.0 * real + 10.0
    per_set = sliced_wasserstein_distance(real, fake, SWDConfig(nhoods_per_image=32, seed=1))
    ref = sliced_wasserstein_distance(real, fake, SWDConfig(nhoods_per_image=32, seed=1,
                                                            normalisation=DescriptorNormalisation.REAL_REFERENCE))
    assert ref.mean > 20 * per_set.mean


def test_unequal_set_sizes_and_errors():
    rng = np.random.default_rng(6)
    r = sliced_wasserstein_distance(textured(rng, 10, 0.1), textured(rng, 7, 0.1), SWDConfig(nhoods_per_image=16))
    assert np.isfinite(r.mean)
    with pytest.raises(ValueError, match="at least 16x16"):
        sliced_wasserstein_distance(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="differ in shape"):
        sliced_wasserstein_distance(np.zeros((2, 16, 16)), np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match="NaN"):
        sliced_wasserstein_distance(np.full((2, 16, 16), np.nan), np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="odd"):
        SWDConfig(nhood_size=6)
