"""SAMe: a hand-computed example, an independent reference, properties and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breastflow.metrics import names
from breastflow.select.same import (
    DEFAULT_SAME_METRICS,
    TIE_TOLERANCE,
    read_candidate_table,
    same_score,
)

METRIC_POOL = [names.FID_IMG, names.FID_RAD, names.SSIM, names.MSE, names.MAE, names.PSNR]


def reference_same(rows: dict[str, dict[str, float]], metrics: list[str], weights: dict[str, float]) -> dict[str, float]:
    """Plain-Python SAMe straight from paper 003 Sec. 3.3.3, loops only."""
    out = {}
    total_w = sum(weights[m] for m in metrics)
    for cand, row in rows.items():
        acc = 0.0
        for m in metrics:
            col = [r[m] for r in rows.values()]
            lo, hi = min(col), max(col)
            s = 0.0 if hi == lo else (row[m] - lo) / (hi - lo)
            if m in (names.SSIM, names.PSNR, names.MS_SSIM) and hi != lo:
                s = 1.0 - s
            acc += weights[m] * s
        out[cand] = acc / total_w
    return out


HAND_TABLE = pd.DataFrame(
    {
        names.FID_IMG: [10.0, 20.0, 30.0],
        names.FID_RAD: [1.0, 1.0, 1.0],
        names.SSIM: [0.9, 0.7, 0.8],
        names.MSE: [4.0, 2.0, 3.0],
        names.MAE: [2.0, 1.0, 3.0],
    },
    index=pd.Index(["ep10", "ep20", "ep30"], name="checkpoint"),
)


def test_worked_example_matches_hand_computation():
    # fid_img 0, .5, 1 | fid_rad constant -> 0 | ssim reversed 0, 1, .5 | mse 1, 0, .5 | mae .5, 0, 1
    r = same_score(HAND_TABLE)
    assert r.scaled.loc["ep10"].tolist() == pytest.approx([0.0, 0.0, 0.0, 1.0, 0.5])
    assert r.scaled.loc["ep20"].tolist() == pytest.approx([0.5, 0.0, 1.0, 0.0, 0.0])
    assert r.scaled.loc["ep30"].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.5, 1.0])
    assert r.same.tolist() == pytest.approx([0.3, 0.3, 0.6])
    assert r.choice == "ep10"  # ep10 and ep20 tie at 0.3: the earlier wins
    assert r.constant_metrics == (names.FID_RAD,)
    pd.testing.assert_frame_equal(r.raw, HAND_TABLE[list(DEFAULT_SAME_METRICS)], check_names=False)


def test_weighted_worked_example():
    r = same_score(HAND_TABLE, weights={names.FID_IMG: 2.0})
    # weights 2,1,1,1,1 -> /6: ep10 1.5/6, ep20 2/6, ep30 4/6
    assert r.same.tolist() == pytest.approx([0.25, 2 / 6, 4 / 6])
    assert r.weights[names.FID_IMG] == pytest.approx(2 / 6)
    r2 = same_score(HAND_TABLE, metrics=[names.FID_IMG, names.MSE], weights=[0.0, 1.0])
    assert r2.choice == "ep20"


def test_to_dict_round_trips_values():
    d = same_score(HAND_TABLE).to_dict()
    assert d["choice"] == "ep10"
    assert d["constant_metrics"] == [names.FID_RAD]
    assert d["raw"]["ep30"][names.MAE] == 3.0
    assert d["scaled"]["ep20"][names.SSIM] == pytest.approx(1.0)
    assert d["higher_is_better"] == [names.SSIM]


@st.composite
def tables(draw, min_rows=1):
    n = draw(st.integers(min_rows, 6))
    metrics = draw(st.lists(st.sampled_from(METRIC_POOL), min_size=1, max_size=len(METRIC_POOL), unique=True))
    values = draw(st.lists(st.lists(st.integers(0, 40), min_size=n, max_size=n), min_size=len(metrics), max_size=len(metrics)))
    data = {m: np.asarray(v, dtype=np.float64) / 4.0 for m, v in zip(metrics, values)}
    weights = draw(st.lists(st.floats(0.1, 10.0), min_size=len(metrics), max_size=len(metrics)))
    return pd.DataFrame(data, index=[f"c{i}" for i in range(n)]), metrics, dict(zip(metrics, weights))


@settings(max_examples=150, deadline=None)
@given(tables())
def test_matches_reference_and_bounds(args):
    table, metrics, weights = args
    r = same_score(table, metrics=metrics, weights=weights)
    ref = reference_same(table.to_dict(orient="index"), metrics, weights)
    assert r.same.tolist() == pytest.approx([ref[c] for c in table.index], abs=1e-12)
    assert ((r.scaled >= 0) & (r.scaled <= 1)).all().all()
    for m in metrics:
        assert r.scaled[m].min() == 0.0
        assert (m in r.constant_metrics) == (table[m].nunique() == 1)
        if m in r.constant_metrics:
            assert (r.scaled[m] == 0.0).all()
    first_min = next(c for c in table.index if ref[c] <= min(ref.values()) + 1e-12)
    assert r.choice == first_min


@settings(max_examples=150, deadline=None)
@given(tables(), st.data())
def test_invariant_to_positive_affine_rescaling(args, data):
    table, metrics, weights = args
    m = data.draw(st.sampled_from(metrics))
    scale = data.draw(st.floats(0.01, 100.0))
    shift = data.draw(st.floats(-1000.0, 1000.0))
    rescaled = table.copy()
    rescaled[m] = table[m] * scale + shift
    a, b = same_score(table, metrics, weights), same_score(rescaled, metrics, weights)
    assert b.scaled.to_numpy() == pytest.approx(a.scaled.to_numpy(), abs=1e-9)
    assert b.same.to_numpy() == pytest.approx(a.same.to_numpy(), abs=1e-9)
    assert a.same[b.choice] <= a.same.min() + 1e-9  # same choice up to ties
    assert a.constant_metrics == b.constant_metrics


@settings(max_examples=200, deadline=None)
@given(tables(min_rows=2), st.data())
def test_improving_one_metric_never_worsens_relative_standing(args, data):
    """Making candidate c strictly better on one metric (others fixed) cannot increase
    SAMe(c) - SAMe(d) for any other candidate d; a unique winner that improves stays the winner."""
    table, metrics, weights = args
    c = data.draw(st.sampled_from(list(table.index)))
    m = data.draw(st.sampled_from(metrics))
    delta = data.draw(st.integers(1, 40)) / 4.0
    better = table.copy()
    better.loc[c, m] += delta if m in names.HIGHER_IS_BETTER else -delta
    before, after = same_score(table, metrics, weights).same, same_score(better, metrics, weights).same
    for d in table.index:
        if d != c:
            assert after[c] - after[d] <= before[c] - before[d] + 1e-12
    if (before.drop(c) > before[c] + 1e-9).all():
        assert same_score(better, metrics, weights).choice == c


@settings(max_examples=150, deadline=None)
@given(tables(), st.randoms(use_true_random=False))
def test_order_independent(args, rnd):
    table, metrics, weights = args
    order = list(table.index)
    rnd.shuffle(order)
    a, b = same_score(table, metrics, weights), same_score(table.loc[order], metrics, weights)
    assert b.same.loc[table.index].tolist() == a.same.tolist()  # bitwise: per-candidate arithmetic is order-free
    # a tie is within TIE_TOLERANCE (0.5 vs 0.49999999999999994: the same terms summed in another order)
    # and goes to the earliest candidate of each order, which may differ
    assert a.same[b.choice] <= a.same.min() + TIE_TOLERANCE
    if ((a.same - a.same.min()) <= TIE_TOLERANCE).sum() == 1:
        assert a.choice == b.choice


def test_identical_candidates_tie_to_the_earlier():
    t = pd.DataFrame({names.MSE: [3.0, 1.0, 1.0, 2.0], names.SSIM: [0.1, 0.5, 0.5, 0.2]}, index=["a", "b", "c", "d"])
    assert same_score(t, [names.MSE, names.SSIM]).choice == "b"
    assert same_score(t.loc[["a", "c", "b", "d"]], [names.MSE, names.SSIM]).choice == "c"


def test_single_candidate_is_chosen_with_all_metrics_constant():
    r = same_score(HAND_TABLE.iloc[[1]])
    assert r.choice == "ep20"
    assert r.same.iloc[0] == 0.0
    assert set(r.constant_metrics) == set(DEFAULT_SAME_METRICS)


@pytest.mark.parametrize(
    "kwargs, table, match",
    [
        ({"metrics": ["fid_img", "lpipz"]}, HAND_TABLE, "unknown metric name.*lpipz"),
        ({"metrics": [names.NN_ACCURACY]}, HAND_TABLE.assign(nn_accuracy=0.6), "higher or lower is better"),
        ({"metrics": [names.FID_IMG, names.PSNR]}, HAND_TABLE, r"column\(s\) \['psnr'\] missing"),
        ({}, HAND_TABLE.assign(mse=[1.0, np.nan, 2.0]), r"'mse' has missing.*\['ep20'\]"),
        ({}, HAND_TABLE.assign(mae=["1", "x", "2"]), r"'mae' has missing, non-numeric"),
        ({}, HAND_TABLE.assign(mae=[1.0, np.inf, 2.0]), "infinite"),
        ({"weights": {names.SSIM: -1.0}}, HAND_TABLE, "weight of metric 'ssim'"),
        ({"weights": [1.0, 2.0]}, HAND_TABLE, "2 weights for 5 metrics"),
        ({"weights": {names.PSNR: 1.0}}, HAND_TABLE, "not ranked"),
        ({"weights": [0.0] * 5}, HAND_TABLE, "at least one weight must be positive"),
        ({"metrics": [names.MSE, names.MSE]}, HAND_TABLE, "listed twice"),
        ({}, HAND_TABLE.iloc[:0], "no rows"),
        ({}, HAND_TABLE.set_axis(["a", "a", "b"]), r"\['a'\] appear more than once"),
    ],
)
def test_errors_name_the_problem(kwargs, table, match):
    with pytest.raises(ValueError, match=match):
        same_score(table, **kwargs)


def test_read_candidate_table(tmp_path):
    p = tmp_path / "t.csv"
    HAND_TABLE.to_csv(p)
    t = read_candidate_table(p)
    assert list(t.index) == ["ep10", "ep20", "ep30"]
    assert same_score(t).choice == "ep10"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv"):
        read_candidate_table(tmp_path / "empty.csv")
    (tmp_path / "one.csv").write_text("checkpoint\nep1\n")
    with pytest.raises(ValueError, match="at least one metric column"):
        read_candidate_table(tmp_path / "one.csv")


def test_order_independent_tie_found_by_ci():
    """The case hypothesis found in CI: SAMe 0.5 and 0.49999999999999994 are a tie; each order picks its first."""
    table = pd.DataFrame({"fid_img": [0.0, 0.25], "fid_rad": [0.0, 0.25], "psnr": [0.0, 0.25], "ssim": [0.25, 0.0],
                          "mse": [0.25, 0.0], "mae": [0.25, 0.0]}, index=["c0", "c1"])
    weights = {"fid_img": 1.0, "fid_rad": 1.5, "psnr": 1.0, "ssim": 1.0, "mse": 1.0, "mae": 1.5}
    metrics = list(table.columns)
    a, b = same_score(table, metrics, weights), same_score(table.loc[["c1", "c0"]], metrics, weights)
    assert abs(a.same["c0"] - a.same["c1"]) <= TIE_TOLERANCE
    assert (a.choice, b.choice) == ("c0", "c1")
