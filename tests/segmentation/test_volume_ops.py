"""Single-breast crop, N4, resampling and z-score on synthetic arrays (SimpleITK as the geometry reference)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from breastflow.segmentation.volume_ops import (
    Half,
    Interpolation,
    VolumeGeometry,
    crop_single_breast,
    from_sitk,
    n4_correct,
    n4_levels,
    resample,
    resampled_shape,
    to_sitk,
    zscore,
)

FLIPPED = VolumeGeometry(spacing=(2.5, 0.75, 0.8), origin=(-12.5, 30.0, 7.25),
                         direction=(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))


def _body(shape: tuple[int, int, int]) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[1], 0:shape[2]]
    return ((yy - shape[1] / 2) / (0.45 * shape[1])) ** 2 + ((xx - shape[2] / 2) / (0.45 * shape[2])) ** 2 < 1


@pytest.mark.parametrize(("width", "columns", "half", "start"), [
    (32, slice(3, 8), Half.LOW_X, 0),
    (32, slice(20, 30), Half.HIGH_X, 16),
    (33, slice(17, 31), Half.HIGH_X, 16),  # odd width: the high half is one column wider
    (32, slice(13, 20), Half.HIGH_X, 16),  # straddles the middle: centre of mass 16.0 -> high half
    (32, slice(12, 19), Half.LOW_X, 0),  # centre of mass 15.0 -> low half
])
def test_crop_keeps_the_half_holding_the_mask(width: int, columns: slice, half: Half, start: int) -> None:
    image = np.arange(6 * 10 * width, dtype=np.float32).reshape(6, 10, width)
    mask = np.zeros(image.shape, np.uint8)
    mask[2:4, 3:6, columns] = 1
    image_c, mask_c, geometry, kept = crop_single_breast(image, mask, FLIPPED)
    assert kept is half
    stop = width // 2 if half is Half.LOW_X else width
    assert np.array_equal(image_c, image[:, :, start:stop])
    assert np.array_equal(mask_c, mask[:, :, start:stop])
    # voxel (0, 0, 0) of the crop sits where voxel (0, 0, start) sat (SimpleITK's own index -> point)
    expected = to_sitk(image, FLIPPED).TransformIndexToPhysicalPoint((start, 0, 0))
    assert np.allclose(geometry.origin, expected)
    assert geometry.spacing == FLIPPED.spacing and geometry.direction == FLIPPED.direction


def test_crop_of_an_empty_mask_names_the_case() -> None:
    with pytest.raises(ValueError, match="cv-9.*empty"):
        crop_single_breast(np.zeros((2, 4, 4)), np.zeros((2, 4, 4), np.uint8), FLIPPED, where="case cv-9")
    with pytest.raises(ValueError, match="not on one grid"):
        crop_single_breast(np.zeros((2, 4, 4)), np.zeros((2, 4, 5), np.uint8), FLIPPED)


def test_sitk_round_trip_keeps_geometry_and_voxels() -> None:
    volume = np.random.default_rng(0).normal(size=(4, 5, 6)).astype(np.float32)
    back, geometry = from_sitk(to_sitk(volume, FLIPPED))
    assert np.array_equal(back, volume)
    assert np.allclose(geometry.spacing, FLIPPED.spacing) and np.allclose(geometry.origin, FLIPPED.origin)
    assert np.allclose(geometry.direction, FLIPPED.direction)
    # the array's X axis (last) runs along the first direction row
    image = to_sitk(volume, FLIPPED)
    step = np.subtract(image.TransformIndexToPhysicalPoint((1, 0, 0)), image.TransformIndexToPhysicalPoint((0, 0, 0)))
    assert np.allclose(step, np.asarray(FLIPPED.direction[:3]) * FLIPPED.spacing[2])


def test_n4_flattens_a_multiplicative_bias_field() -> None:
    shape = (12, 48, 48)
    body = _body(shape)[None].repeat(shape[0], axis=0)
    rng = np.random.default_rng(1)
    flat = np.where(body, 600.0, 5.0) + rng.normal(0, 10, shape) * body
    _, _, xx = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]]
    biased = flat * (0.6 + 0.8 * xx / shape[2])  # a 0.6 -> 1.4 ramp across the width

    def cv(a: np.ndarray) -> float:
        return float(a[body].std() / a[body].mean())

    geometry = VolumeGeometry((2.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    corrected = n4_correct(biased, geometry, shrink=4)
    assert corrected.shape == biased.shape and corrected.dtype == np.float32
    assert cv(biased) > 0.15  # the ramp dominates the tissue's spread
    assert cv(corrected) < 0.4 * cv(biased), (cv(biased), cv(corrected))
    assert cv(corrected) < 2.5 * cv(flat)


def test_n4_keeps_a_lesion_on_a_small_field_of_view() -> None:
    # a 16 x 24 mm crop: SimpleITK's default 4 fitting levels would fit 2-3 mm spans and absorb the lesion
    shape = (8, 24, 16)
    body = _body(shape)[None].repeat(shape[0], axis=0)
    rng = np.random.default_rng(3)
    volume = np.where(body, 600.0, 5.0) + rng.normal(0, 20, shape) * body
    lesion = np.zeros(shape, bool)
    lesion[2:6, 9:15, 5:10] = True
    volume[lesion] *= 1.4
    geometry = VolumeGeometry((2.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))

    def contrast(a: np.ndarray) -> float:
        return float(a[lesion].mean() / a[body & ~lesion].mean())

    assert contrast(n4_correct(volume, geometry)) == pytest.approx(contrast(volume), rel=0.03)
    assert n4_levels(24.0, 4) == 1 and n4_levels(170.0, 4) == 2 and n4_levels(300.0, 4) == 3
    assert n4_levels(1000.0, 4) == 4


def test_n4_rejects_a_bad_shrink_factor() -> None:
    with pytest.raises(ValueError, match="shrink"):
        n4_correct(np.ones((4, 8, 8)), FLIPPED, shrink=0)


@pytest.mark.parametrize("target", [(1.25, 1.5, 1.2), (2.0, 0.5, 0.5), (5.0, 1.0, 1.0)])
def test_resampling_keeps_the_mask_volume(target: tuple[float, float, float]) -> None:
    shape = (20, 40, 40)
    _, yy, xx = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]]
    zz = np.arange(shape[0])[:, None, None]
    mask = (((zz - 10) / 6.0) ** 2 + ((yy - 20) / 12.0) ** 2 + ((xx - 18) / 10.0) ** 2 < 1).astype(np.uint8)
    before = mask.sum() * np.prod(FLIPPED.spacing)
    out, geometry = resample(mask, FLIPPED, target, None)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    assert out.shape == resampled_shape(shape, FLIPPED.spacing, target)
    assert np.allclose(geometry.spacing, target) and np.allclose(geometry.origin, FLIPPED.origin)
    after = out.sum() * np.prod(target)
    assert after == pytest.approx(before, rel=0.1)


def test_image_resampling_interpolates_and_keeps_the_grid_of_its_mask() -> None:
    image = np.linspace(0, 100, 8 * 10 * 12, dtype=np.float32).reshape(8, 10, 12)
    for interpolation in Interpolation:
        out, geometry = resample(image, FLIPPED, (1.25, 1.5, 1.6), interpolation)
        mask, mask_geometry = resample(np.ones(image.shape, np.uint8), FLIPPED, (1.25, 1.5, 1.6), None)
        assert out.dtype == np.float32 and out.shape == mask.shape and geometry == mask_geometry
        assert 0 <= float(np.median(out)) <= 100
    with pytest.raises(ValueError, match="positive"):
        resample(image, FLIPPED, (0.0, 1.0, 1.0), Interpolation.LINEAR)


def test_resampled_shape_matches_simpleitk_physical_extent() -> None:
    assert resampled_shape((20, 40, 41), (2.0, 1.0, 1.0), (1.0, 2.0, 1.5)) == (40, 20, 27)
    assert resampled_shape((1, 2, 2), (1.0, 1.0, 1.0), (10.0, 10.0, 10.0)) == (1, 1, 1)
    assert sitk.Version.MajorVersion() >= 2


def test_zscore() -> None:
    volume = np.random.default_rng(2).normal(50, 7, size=(5, 6, 7))
    out = zscore(volume)
    assert out.dtype == np.float32
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-5) and float(out.std()) == pytest.approx(1.0, rel=1e-4)
    assert np.allclose(out, (volume - volume.mean()) / volume.std(), atol=1e-5)
    assert np.array_equal(zscore(np.full((2, 2, 2), 3.0)), np.zeros((2, 2, 2), np.float32))
