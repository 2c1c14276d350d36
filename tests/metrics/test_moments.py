"""Pixel moments against scipy.stats, and the moments plot."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from breastflow.metrics import names
from breastflow.metrics.moments import (
    MOMENT_NAMES,
    compare_moments,
    image_moments,
    moment_name,
    plot_moments,
    set_moments,
)


@pytest.mark.parametrize("dist", ["gamma", "normal", "uint16"])
def test_image_moments_match_scipy(dist):
    rng = np.random.default_rng(0)
    img = {"gamma": rng.gamma(2.0, 3.0, (40, 30)), "normal": rng.normal(5, 2, (33, 17)),
           "uint16": rng.integers(0, 4096, (20, 20)).astype(np.uint16)}[dist]
    x = img.astype(np.float64).ravel()
    expected = [x.mean(), x.std(), stats.skew(x), stats.kurtosis(x, fisher=False), stats.moment(x, 5) / x.std() ** 5]
    assert image_moments(img) == pytest.approx(expected, rel=1e-10)


def test_mask_and_constant_image():
    img = np.arange(16.0).reshape(4, 4)
    mask = img < 4
    assert image_moments(img, mask)[:2] == pytest.approx([1.5, np.std([0, 1, 2, 3])])
    assert image_moments(np.full((3, 3), 7.0)).tolist() == [7.0, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="no pixels"):
        image_moments(img, np.zeros_like(mask))


def test_compare_moments_distances_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    real = rng.gamma(2.0, 1.0, (20, 16, 16))
    close = rng.gamma(2.0, 1.0, (25, 16, 16))
    off = rng.normal(2.0, 1.0, (25, 16, 16))
    a, b = compare_moments(real, close), compare_moments(real, off)
    assert a.real.shape == (20, 5) and a.fake.shape == (25, 5)
    # Gaussian fakes have the wrong skewness: that moment's distance is far larger
    assert b.distances["skewness"] > 3 * a.distances["skewness"]
    d = a.to_dict()
    sd = set_moments(real)[:, 2].std()
    assert d[moment_name("skewness")] == pytest.approx(stats.wasserstein_distance(a.real[:, 2], a.fake[:, 2]) / sd)
    assert d[names.MOMENTS_W1] == pytest.approx(np.mean([a.distances[m] for m in MOMENT_NAMES]))
    png = plot_moments(a, tmp_path / "plots" / "moments.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 4 * im.size[1]


def test_set_errors_name_the_image():
    with pytest.raises(ValueError, match="fake image 1: image has NaN"):
        compare_moments(np.ones((2, 3, 3)), [np.ones((3, 3)), np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match="real set is empty"):
        compare_moments([], [np.ones((3, 3))])
