"""The one intensity rule: unit, STUDY_UNIT map and its inverse, the legacy 8-bit map."""

from __future__ import annotations

import numpy as np
import pytest

from breastflow.data.intensity import (
    IntensityMap,
    Rescale,
    UnitConfig,
    intensity_unit,
    legacy_minmax_map,
    study_unit_map,
    unit_slices,
    volume_unit,
)


@pytest.mark.parametrize(("z", "max_slices", "expected"), [
    (20, 16, list(range(1, 20, 2))),
    (16, 16, list(range(16))),
    (5, 16, [0, 1, 2, 3, 4]),
    (100, 4, [12, 37, 62, 87]),
    (1, 16, [0]),
])
def test_unit_slices_are_strided_and_bounded(z, max_slices, expected):
    got = unit_slices(z, max_slices)
    assert got.tolist() == expected and len(got) <= max_slices


def test_unit_is_the_body_percentile_after_rescale():
    rng = np.random.default_rng(0)
    sample = np.zeros((4, 50, 50), np.int16)
    sample[:, 10:40, 10:40] = rng.integers(100, 1100, size=(4, 30, 30))  # body; the rest is air (0)
    rescale = Rescale(slope=2.0, intercept=-50.0)
    physical = sample[:, 10:40, 10:40].astype(float) * 2.0 - 50.0
    expected = np.percentile(physical[physical > (sample * 2.0 - 50.0).mean()], 99.5)
    assert intensity_unit(sample, rescale, UnitConfig()) == pytest.approx(expected)
    # the air does not pull the unit down: same as the percentile of the body alone (to 1 %)
    assert intensity_unit(sample, rescale, UnitConfig()) == pytest.approx(np.percentile(physical, 99.5), rel=0.01)


def test_unit_errors_are_clear():
    with pytest.raises(ValueError, match="constant"):
        intensity_unit(np.full((2, 4, 4), 7, np.uint16), Rescale(), UnitConfig(), "stu-x")
    with pytest.raises(ValueError, match="not positive"):
        intensity_unit(np.arange(32, dtype=np.int16).reshape(2, 4, 4), Rescale(intercept=-1000.0), UnitConfig())
    with pytest.raises(ValueError, match="slope"):
        Rescale(slope=0.0)


def test_volume_unit_uses_the_reader_subsample():
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 4000, size=(40, 8, 8)).astype(np.uint16)
    config = UnitConfig(max_slices=8)
    assert volume_unit(volume, Rescale(), config) == intensity_unit(volume[unit_slices(40, 8)], Rescale(), config)


@pytest.mark.parametrize(("dtype", "rescale"), [
    (np.uint16, Rescale()),
    (np.int16, Rescale(slope=2.0, intercept=-100.0)),
    (np.uint8, Rescale(slope=0.5, intercept=3.0)),
    (np.int32, Rescale(intercept=1024.0)),
])
def test_study_unit_map_inverts_raw_values_within_one_unit(dtype, rescale):
    info = np.iinfo(dtype)
    unit, clip_max = 1234.5 if info.max > 255 else 40.0, 2.0
    mapping = study_unit_map(rescale, unit, clip_max)
    # every raw value whose physical value lies in [0, clip_max * unit] (the unclipped range)
    lo = max(info.min, int(np.ceil(rescale.invert(0.0))))
    hi = min(info.max, int(np.floor(rescale.invert(clip_max * unit))))
    raw = np.arange(lo, hi + 1).astype(dtype)
    assert raw.size > 70
    y = mapping.normalise(raw)
    assert y.dtype == np.float32 and y.min() >= -1.0 and y.max() <= 1.0
    back = mapping.denormalise(y, dtype)
    assert back.dtype == np.dtype(dtype)
    assert np.abs(back.astype(np.int64) - raw.astype(np.int64)).max() <= 1
    assert mapping.normalise(np.array([rescale.invert(0.0)]))[0] == -1.0  # physical 0 -> -1


def test_study_unit_map_clips_and_maps_unit_to_the_documented_value():
    mapping = study_unit_map(Rescale(), 1000.0, 2.0)
    y = mapping.normalise(np.array([0, 1000, 2000, 5000], np.uint16))
    np.testing.assert_allclose(y, [-1.0, 0.0, 1.0, 1.0])  # x / unit = 1 -> 0; clip at 2 units
    assert mapping.denormalise(np.array([1.5]), np.uint16)[0] == 2000  # clipped to [-1, 1] first


def test_legacy_map_is_8_bit_and_per_series():
    mapping = legacy_minmax_map(Rescale(), 100.0, 1120.0)
    y = mapping.normalise(np.arange(100, 1121, dtype=np.uint16))
    levels = (y.astype(np.float64) + 1) / 2 * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert (y.min(), y.max()) == (-1.0, 1.0)
    assert len(np.unique(y)) == 256
    assert isinstance(legacy_minmax_map(Rescale(), 5.0, 5.0), IntensityMap)  # constant series: no division by 0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16])
def test_fast_float32_path_equals_the_float64_reference(dtype):
    info = np.iinfo(dtype)
    raw = np.random.default_rng(2).integers(info.min, info.max, size=(64, 64), endpoint=True).astype(dtype)
    raw[0, :2] = info.min, info.max
    mapping = study_unit_map(Rescale(slope=1.5, intercept=-20.0), float(info.max) / 3, 2.0)
    fast, reference = mapping.normalise(raw), mapping.normalise(raw.astype(np.int64))  # int64: float64 path
    assert fast.dtype == reference.dtype == np.float32
    np.testing.assert_allclose(fast, reference, atol=1e-6)
    assert fast.min() == -1.0 and fast.max() == 1.0  # clipped at both ends
