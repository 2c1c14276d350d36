"""Lesion kinetics: scaled phase means, BI-RADS curve types, Cohen's kappa, plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from breastflow.metrics import names
from breastflow.metrics.kinetics import (
    BoundingBox,
    CurveType,
    KineticsCase,
    KineticsConfig,
    analyse_kinetics,
    classify_curve,
    cohen_kappa,
    lesion_phase_table,
    plot_case_kinetics,
    plot_dataset_kinetics,
)

BOX = BoundingBox(start=(1, 4, 4), stop=(3, 8, 8))


def series(lesion: list[float], breast: float = 100.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """(P, 4, 12, 12) volume: breast tissue at ``breast``, lesion box at ``lesion[p]``, background 0."""
    rng = np.random.default_rng(seed)
    vol = np.zeros((len(lesion), 4, 12, 12))
    vol[:, :, 2:10, 2:10] = breast
    for p, v in enumerate(lesion):
        vol[p][BOX.slices()] = v + noise * rng.normal(size=(2, 4, 4))
    return vol


def test_phase_means_are_on_a_common_per_case_scale():
    real = series([100.0, 200.0, 250.0, 300.0])
    case = KineticsCase("c1", real=real, fake=series([100.0, 180.0, 230.0, 260.0]), bbox=BOX)
    t = lesion_phase_table([case])
    # reference = mean of the real pre-contrast breast (> 0): lesion 100 everywhere there -> 100
    r = t[t.source == "real"].sort_values("phase")
    assert r["mean"].tolist() == pytest.approx([1.0, 2.0, 2.5, 3.0])
    assert (r.reference == 100.0).all()
    # multiplying the whole case by a constant (another scanner gain) changes nothing
    scaled = lesion_phase_table([KineticsCase("c1", real=7 * real, fake=7 * case.fake, bbox=BOX)])
    pd.testing.assert_frame_equal(scaled.drop(columns="reference"), t.drop(columns="reference"))


def test_reference_mask_is_used():
    real = series([100.0, 200.0])
    mask = np.zeros(real.shape[1:], bool)
    mask[0, 2:4, 2:4] = True  # breast tissue only -> 100
    mask[0, 0, 0] = True  # plus one background voxel -> mean 96
    t = lesion_phase_table([KineticsCase("c", real, real, BOX, reference_mask=mask)])
    assert t.reference.iloc[0] == pytest.approx((4 * 100.0 + 0.0) / 5)


@pytest.mark.parametrize("means, expected", [
    ([1.0, 2.0, 2.3], CurveType.PERSISTENT),
    ([1.0, 2.0, 2.2], CurveType.PLATEAU),  # exactly +10 %: not more than 10 %
    ([1.0, 2.0, 1.8], CurveType.PLATEAU),  # exactly -10 %
    ([1.0, 2.0, 1.7], CurveType.WASHOUT),
    ([1.0, 2.0, 2.0], CurveType.PLATEAU),
])
def test_classify_curve_birads_thresholds(means, expected):
    assert classify_curve(np.array(means)) is expected


def test_early_peak_over_several_phases():
    means = np.array([1.0, 2.0, 3.0, 2.5])
    assert classify_curve(means, KineticsConfig(early_phases=(1,))) is CurveType.PERSISTENT
    assert classify_curve(means, KineticsConfig(early_phases=(1, 2))) is CurveType.WASHOUT


def test_cohen_kappa_hand_computed():
    a = ["p", "p", "w", "w", "l"]
    b = ["p", "w", "w", "w", "l"]
    # p_o = 0.8, p_e = .4*.2 + .4*.6 + .2*.2 = .36 -> (0.8 - 0.36) / 0.64
    assert cohen_kappa(a, b) == pytest.approx(0.6875)
    assert cohen_kappa(a, a) == 1.0
    assert np.isnan(cohen_kappa(["p", "p"], ["p", "p"]))


def test_analyse_kinetics_agreement_and_plots(tmp_path):
    curves = {  # real lesion curve, synthetic lesion curve
        "a": ([100, 200, 250, 300], [100, 180, 230, 260]),  # persistent / persistent
        "b": ([100, 250, 250, 200], [100, 240, 250, 190]),  # washout / washout
        "c": ([100, 200, 210, 205], [100, 200, 250, 300]),  # plateau / persistent
        "d": ([100, 150, 160, 170], [100, 160, 170, 185]),  # persistent / persistent
    }
    cases = [KineticsCase(cid, series(r, noise=2.0, seed=i), series(f, noise=2.0, seed=i + 10), BOX)
             for i, (cid, (r, f)) in enumerate(curves.items())]
    res = analyse_kinetics(cases)
    assert res.curves.set_index("case").loc["c"].tolist() == ["plateau", "persistent"]
    assert res.accuracy == pytest.approx(0.75)
    assert res.kappa == pytest.approx(cohen_kappa(res.curves.real, res.curves.synthetic))
    assert res.to_dict()[names.KINETICS_CURVE_ACCURACY] == pytest.approx(0.75)
    # dataset summary: mean over cases of the per-case lesion mean
    ph = res.phases
    expected = ph[(ph.source == "real") & (ph.phase == 2)]["mean"].mean()
    got = res.dataset[(res.dataset.source == "real") & (res.dataset.phase == 2)]["mean"].iloc[0]
    assert got == pytest.approx(expected)
    assert 0.0 <= res.order_agreement <= 1.0
    for png in (plot_dataset_kinetics(res, tmp_path / "fig7.png"), plot_case_kinetics(res, tmp_path / "fig8.png")):
        with Image.open(png) as im:
            assert im.format == "PNG"


def test_errors_name_the_case():
    good = series([100.0, 200.0])
    with pytest.raises(ValueError, match="case bad: real .* and synthetic .* series must be equal"):
        lesion_phase_table([KineticsCase("bad", good, good[:1], BOX)])
    with pytest.raises(ValueError, match="case out: bounding box"):
        lesion_phase_table([KineticsCase("out", good, good, BoundingBox((0, 0, 0), (5, 2, 2)))])
    with pytest.raises(ValueError, match="case zero: reference mask selects no voxel"):
        lesion_phase_table([KineticsCase("zero", np.zeros_like(good), good, BOX)])
    with pytest.raises(ValueError, match="empty or malformed"):
        BoundingBox((1, 1), (1, 3))
