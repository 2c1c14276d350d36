"""Paired metrics agree with scikit-image (SSIM, PSNR, MSE) and torchmetrics (MS-SSIM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import (
    mean_squared_error,
    peak_signal_noise_ratio,
    structural_similarity,
)
from torchmetrics.image import MultiScaleStructuralSimilarityIndexMeasure

from breastflow.metrics.names import MAE, MS_SSIM, MSE, PSNR, SSIM
from breastflow.metrics.paired import paired_metrics
from breastflow.metrics.ssim import SSIM_WIN_SIZE, ms_ssim, ssim_map

# (dtype, data_range, noise fraction, shape)
CASES = [
    (np.uint8, 255, 0.05, (3, 48, 40)),
    (np.uint8, 255, 0.3, (2, 1, 33, 57)),
    (np.uint16, 65535, 0.1, (3, 40, 48)),
    (np.uint16, 4095, 0.02, (2, 3, 36, 36)),
    (np.float32, 1.0, 0.2, (2, 32, 32)),
]


def _pair(dtype, data_range, noise, shape, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    base = (np.sin(xx / 5.0) * np.cos(yy / 7.0) + 1) / 2
    real = np.clip(base * data_range + rng.normal(0, 0.05 * data_range, shape), 0, data_range)
    fake = np.clip(real + rng.normal(0, noise * data_range, shape), 0, data_range)
    if np.issubdtype(dtype, np.integer):
        return np.round(fake).astype(dtype), np.round(real).astype(dtype)
    return fake.astype(dtype), real.astype(dtype)


@pytest.mark.parametrize(("dtype", "data_range", "noise", "shape"), CASES)
def test_matches_scikit_image(dtype, data_range, noise, shape):
    fake, real = _pair(dtype, data_range, noise, shape)
    res = paired_metrics(fake, real, data_range, metrics=(MSE, MAE, PSNR, SSIM))
    for i in range(shape[0]):
        f, r = fake[i], real[i]
        kw = {"channel_axis": 0} if f.ndim == 3 else {}
        if f.ndim == 3 and f.shape[0] == 1:
            f, r, kw = f[0], r[0], {}
        ref_ssim = structural_similarity(
            f, r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=data_range, **kw
        )
        assert res.per_case[SSIM][i] == pytest.approx(ref_ssim, abs=1e-4)
        assert res.per_case[PSNR][i] == pytest.approx(peak_signal_noise_ratio(r, f, data_range=data_range), abs=1e-4)
        # skimage accumulates float32 input in float32; ours is float64
        assert res.per_case[MSE][i] == pytest.approx(mean_squared_error(r, f), rel=1e-6)
        assert res.per_case[MAE][i] == pytest.approx(np.abs(r.astype(float) - f.astype(float)).mean(), rel=1e-9)


@pytest.mark.parametrize(("dtype", "data_range"), [(np.uint8, 255), (np.uint16, 65535)])
def test_ms_ssim_matches_torchmetrics(dtype, data_range):
    fake, real = _pair(dtype, data_range, 0.1, (2, 1, 176, 180))
    res = paired_metrics(fake, real, data_range, metrics=(MS_SSIM,))
    ref = MultiScaleStructuralSimilarityIndexMeasure(data_range=float(data_range), reduction="none")(
        torch.from_numpy(fake.astype(np.float64)), torch.from_numpy(real.astype(np.float64))
    )
    np.testing.assert_allclose(res.per_case[MS_SSIM], ref.numpy(), atol=1e-4)


def test_uint8_differences_do_not_wrap():
    real = np.zeros((1, 16, 16), np.uint8)
    fake = np.full((1, 16, 16), 10, np.uint8)
    res = paired_metrics(real, fake, 255, metrics=(MSE, MAE))  # real - fake would wrap to 246 in uint8
    assert res.per_case[MSE][0] == 100.0
    assert res.per_case[MAE][0] == 10.0


def test_summary_keys_and_values():
    fake, real = _pair(np.uint8, 255, 0.1, (4, 32, 32))
    res = paired_metrics(fake, real, 255)
    summary = res.summary()
    assert set(summary) == {MSE, MAE, PSNR, SSIM, "mse_sd", "mae_sd", "psnr_sd", "ssim_sd"}
    assert summary[MSE] == pytest.approx(res.per_case[MSE].mean())
    assert summary["ssim_sd"] == pytest.approx(res.per_case[SSIM].std())


def test_box_region_equals_crop_for_pixel_metrics_and_masked_ssim_map():
    fake, real = _pair(np.uint16, 4095, 0.1, (2, 40, 44))
    boxes = [(5, 6, 25, 30), (10, 0, 40, 20)]
    res = paired_metrics(fake, real, 4095, metrics=(MSE, PSNR, SSIM), regions=boxes)
    r = (SSIM_WIN_SIZE - 1) // 2
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        f, g = fake[i, r0:r1, c0:c1], real[i, r0:r1, c0:c1]
        assert res.per_case[MSE][i] == pytest.approx(mean_squared_error(g, f))
        _, full = structural_similarity(
            fake[i], real[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=4095, full=True
        )
        mask = np.zeros(full.shape, bool)
        mask[r0:r1, c0:c1] = True
        mask[:r], mask[-r:], mask[:, :r], mask[:, -r:] = False, False, False, False
        assert res.per_case[SSIM][i] == pytest.approx(full[mask].mean(), abs=1e-4)
    masks = np.zeros((2, 40, 44), bool)
    for i, (r0, c0, r1, c1) in enumerate(boxes):
        masks[i, r0:r1, c0:c1] = True
    res_mask = paired_metrics(fake, real, 4095, metrics=(MSE, SSIM), regions=masks)
    np.testing.assert_allclose(res_mask.per_case[MSE], res.per_case[MSE])
    np.testing.assert_allclose(res_mask.per_case[SSIM], res.per_case[SSIM])


def test_identical_images():
    x = np.random.default_rng(1).integers(0, 256, (2, 24, 24)).astype(np.uint8)
    res = paired_metrics(x, x, 255)
    assert np.all(res.per_case[MSE] == 0) and np.all(np.isinf(res.per_case[PSNR]))
    np.testing.assert_allclose(res.per_case[SSIM], 1.0)


BAD_INPUTS = [
    ("shape mismatch", np.zeros((2, 16, 16)), np.zeros((2, 16, 17)), 1.0, {}, "differ in shape"),
    ("empty", np.zeros((0, 16, 16)), np.zeros((0, 16, 16)), 1.0, {}, "empty"),
    ("nan", np.full((1, 16, 16), np.nan), np.zeros((1, 16, 16)), 1.0, {}, "NaN"),
    ("data range", np.zeros((1, 16, 16)), np.zeros((1, 16, 16)), 0.0, {}, "data_range"),
    ("unknown metric", np.zeros((1, 16, 16)), np.zeros((1, 16, 16)), 1.0, {"metrics": ("fid",)}, "unknown"),
    ("too small", np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), 1.0, {"metrics": (SSIM,)}, "at least 11"),
    ("box count", np.zeros((2, 16, 16)), np.zeros((2, 16, 16)), 1.0, {"regions": [(0, 0, 4, 4)]}, "boxes"),
    ("box outside", np.zeros((1, 16, 16)), np.zeros((1, 16, 16)), 1.0, {"regions": [(0, 0, 40, 4)]}, "outside"),
    ("ms-ssim region", np.zeros((1, 16, 16)), np.zeros((1, 16, 16)), 1.0,
     {"metrics": (MS_SSIM,), "regions": [(0, 0, 4, 4)]}, "whole images"),
    ("ms-ssim small", np.zeros((1, 64, 64)), np.zeros((1, 64, 64)), 1.0, {"metrics": (MS_SSIM,)}, "larger than 160"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "fake", "real", "data_range", "kwargs", "message"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(case, fake, real, data_range, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_metrics(fake, real, data_range, **kwargs)


def _mammogram_like(n, size, data_range, offset=0, seed=0):
    """Flat zero background, textured tissue, a saturated marker: where float32 SSIM could cancel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = np.empty((n, size, size))
    for i in range(n):
        breast = (xx + 0.1) ** 2 + ((yy - 0.5) / 1.3) ** 2 < rng.uniform(0.3, 0.45)
        tissue = 0.55 + 0.2 * np.sin(2 * np.pi * rng.uniform(3, 9) * xx) * np.cos(2 * np.pi * rng.uniform(3, 9) * yy)
        img = np.where(breast, tissue + rng.normal(0, 0.01, tissue.shape), 0.0)
        img[: size // 8, -size // 6 :] = 1.0
        out[i] = np.clip(np.round(img * (data_range - offset)) + offset, 0, data_range)
    fake = np.clip(out + np.round(rng.normal(0, 0.003 * data_range, out.shape)), 0, data_range)
    return fake, out


# (dtype, data_range, offset): 8/12/16-bit, and 16-bit values in a narrow band far from 0
FLOAT32_CASES = [(np.uint8, 255, 0), (np.uint16, 4095, 0), (np.uint16, 65535, 0), (np.uint16, 65535, 60000)]


@pytest.mark.parametrize(("dtype", "data_range", "offset"), FLOAT32_CASES)
def test_float32_default_is_within_1e5_of_skimage_and_torchmetrics_float64(dtype, data_range, offset):
    fake, real = (a.astype(dtype) for a in _mammogram_like(2, 176, data_range, offset))
    res = paired_metrics(fake, real, data_range, metrics=(SSIM, MS_SSIM))  # float32 filtering
    res64 = paired_metrics(fake, real, data_range, metrics=(SSIM, MS_SSIM), dtype=torch.float64)
    sk = [structural_similarity(f, r, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=data_range) for f, r in zip(fake, real)]  # fmt: skip
    tm = MultiScaleStructuralSimilarityIndexMeasure(data_range=float(data_range), reduction="none")(
        torch.from_numpy(fake.astype(np.float64))[:, None], torch.from_numpy(real.astype(np.float64))[:, None]
    )
    np.testing.assert_allclose(res.per_case[SSIM], sk, atol=1e-5, rtol=0)
    np.testing.assert_allclose(res64.per_case[SSIM], sk, atol=1e-12, rtol=0)
    np.testing.assert_allclose(res.per_case[MS_SSIM], tm.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(res64.per_case[MS_SSIM], tm.numpy(), atol=1e-8, rtol=0)


def test_ssim_with_ms_ssim_shares_filtering_without_changing_values():
    fake, real = _pair(np.uint16, 4095, 0.1, (2, 3, 180, 176))
    both = paired_metrics(fake, real, 4095, metrics=(MS_SSIM, SSIM))
    alone = [paired_metrics(fake, real, 4095, metrics=(m,)).per_case[m] for m in (SSIM, MS_SSIM)]
    assert list(both.per_case) == [MS_SSIM, SSIM]
    np.testing.assert_array_equal(both.per_case[SSIM], alone[0])
    np.testing.assert_array_equal(both.per_case[MS_SSIM], alone[1])
    x, y = torch.from_numpy(fake.astype(np.int16)), torch.from_numpy(real.astype(np.int16))  # public helpers
    np.testing.assert_allclose(ms_ssim(x, y, 4095).numpy(), alone[1], atol=1e-12)
    np.testing.assert_allclose(ssim_map(x, y, 4095).double().flatten(1).mean(1).numpy(), alone[0], atol=1e-6)
