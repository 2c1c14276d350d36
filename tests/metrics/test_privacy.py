"""Memorisation distances against brute force; copies of training images are flagged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from breastflow.metrics import names
from breastflow.metrics.privacy import (
    DistanceSpace,
    memorisation_distances,
    plot_closest_pairs,
)


def test_distances_match_brute_force_and_copies_are_flagged(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 8, 8))
    holdout = rng.normal(size=(40, 8, 8))
    copies = train[[3, 17, 42]] + 1e-3 * rng.normal(size=(3, 8, 8))
    fresh = rng.normal(size=(30, 8, 8))
    synthetic = np.concatenate([fresh[:10], copies, fresh[10:]])
    r = memorisation_distances(train, holdout, synthetic, space=DistanceSpace.PIXELS, chunk_size=7)

    flat_t = train.reshape(60, -1)
    ref_syn = np.array([np.linalg.norm(flat_t - s.ravel(), axis=1).min() for s in synthetic])
    ref_idx = np.array([np.linalg.norm(flat_t - s.ravel(), axis=1).argmin() for s in synthetic])
    ref_ho = np.array([np.linalg.norm(flat_t - h.ravel(), axis=1).min() for h in holdout])
    assert r.synthetic_dcr == pytest.approx(ref_syn, rel=1e-9)
    assert (r.synthetic_nearest == ref_idx).all()
    assert r.holdout_dcr == pytest.approx(ref_ho, rel=1e-9)
    assert r.threshold == pytest.approx(np.quantile(ref_ho, 0.05))
    assert r.close[10:13].all()
    assert r.close_share == pytest.approx((ref_syn < np.quantile(ref_ho, 0.05)).mean())
    assert {p[1] for p in r.closest_pairs(3)} == {3, 17, 42}
    d = r.to_dict()
    assert d[f"{names.PRIVACY_CLOSE_SHARE}_pixels"] == r.close_share

    png = plot_closest_pairs(r, synthetic, train, tmp_path / "pairs.png", n_pairs=4)
    with Image.open(png) as im:
        assert im.format == "PNG"


def test_quantile_is_configurable():
    rng = np.random.default_rng(1)
    train, holdout, syn = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    lo = memorisation_distances(train, holdout, syn, quantile=0.05)
    hi = memorisation_distances(train, holdout, syn, quantile=0.5)
    assert hi.threshold > lo.threshold and hi.close_share >= lo.close_share
    with pytest.raises(ValueError, match=r"quantile must be in \(0, 1\)"):
        memorisation_distances(train, holdout, syn, quantile=1.0)
    with pytest.raises(ValueError, match="synthetic dimension 3 != training dimension 4"):
        memorisation_distances(train, holdout, np.zeros((2, 3)))
