"""Subgroup breakdown against pandas groupby; small and missing groups are reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from breastflow.metrics.fairness import (
    ALL_GROUP,
    MISSING_GROUP,
    STATUS_OK,
    mean_of,
    metric_by_group,
)


@pytest.fixture
def cases() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({
        "vendor": rng.choice(["GE", "Siemens"], n),
        "field_strength": rng.choice([1.5, 3.0], n),
        "lesion": ["benign"] * 3 + ["malignant"] * 55 + [None] * 2,
        "ssim": rng.uniform(0.5, 0.9, n),
    })


def test_matches_groupby(cases):
    out = metric_by_group(cases, ["vendor", ("vendor", "field_strength")], mean_of("ssim"), min_group_size=5)
    assert list(out.columns) == ["grouping", "group", "n", "metric", "value", "status"]
    ssim = out[out.metric == "ssim"].set_index(["grouping", "group"])
    for vendor, sub in cases.groupby("vendor"):
        assert ssim.loc[("vendor", vendor), "value"] == pytest.approx(sub.ssim.mean())
        assert ssim.loc[("vendor", vendor), "n"] == len(sub)
    for (vendor, fs), sub in cases.groupby(["vendor", "field_strength"]):
        assert ssim.loc[("vendor&field_strength", f"{vendor}&{fs}"), "value"] == pytest.approx(sub.ssim.mean())
    assert ssim.loc[(ALL_GROUP, ALL_GROUP), "value"] == pytest.approx(cases.ssim.mean())
    sd = out[out.metric == "ssim_sd"].set_index(["grouping", "group"])
    assert sd.loc[("vendor", "GE"), "value"] == pytest.approx(cases[cases.vendor == "GE"].ssim.std(ddof=1))


def test_small_and_missing_groups_say_so(cases):
    out = metric_by_group(cases, ["lesion"], lambda t: float(t.ssim.median()), metric_name="ssim_median", min_group_size=5)
    rows = out.set_index("group")
    assert np.isnan(rows.loc["benign", "value"])
    assert rows.loc["benign", "status"] == "too small: n=3 < min_group_size=5"
    assert rows.loc["malignant", "status"] == STATUS_OK
    assert rows.loc["malignant", "value"] == pytest.approx(cases[cases.lesion == "malignant"].ssim.median())
    assert rows.loc[MISSING_GROUP, "n"] == 2  # missing labels are a visible group, not dropped
    assert (out.metric == "ssim_median").all()


def test_errors(cases):
    with pytest.raises(KeyError, match=r"\['scanner'\] not in the case table"):
        metric_by_group(cases, ["scanner"], mean_of("ssim"))
    with pytest.raises(ValueError, match="empty"):
        metric_by_group(cases.iloc[:0], ["vendor"], mean_of("ssim"))
