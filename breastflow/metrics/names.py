"""Metric-name constants shared by every metric module (STYLE habit 7).

Metric functions return flat ``dict[str, float]`` keyed by these constants;
the SAMe table, the ``evaluate`` report and the JSON outputs use the same
spelling. A summary over pairs adds ``"<name>_sd"`` for the standard deviation
(see :func:`sd_name`).

Add new names here (one constant per metric) and, if larger values are better,
to :data:`HIGHER_IS_BETTER`.
"""

from __future__ import annotations

# Paired metrics (synthetic vs its real counterpart), breastflow.metrics.paired / lpips
MSE = "mse"
MAE = "mae"
PSNR = "psnr"
SSIM = "ssim"
MS_SSIM = "ms_ssim"
LPIPS = "lpips"

# Distribution metrics (Fréchet distances), breastflow.metrics.frechet
FID_IMG = "fid_img"
FID_RAD = "fid_rad"
FRD = "frd"

#: Paired metrics computed by :func:`breastflow.metrics.paired.paired_metrics`.
PAIRED_METRICS: tuple[str, ...] = (MSE, MAE, PSNR, SSIM, MS_SSIM)

#: Fréchet metric name for each feature-extractor registry name.
FRECHET_METRIC_FOR_EXTRACTOR: dict[str, str] = {
    "inception": FID_IMG,
    "radimagenet": FID_RAD,
    "radiomics": FRD,  # FRD v1 (frd-score default)
    "radiomics-v0": FRD,
}

#: Metrics where a larger value means better synthetic data.
HIGHER_IS_BETTER: frozenset[str] = frozenset({PSNR, SSIM, MS_SSIM})

# Set-level metrics of the other seeds and the project's own checks
# (nn_accuracy, moments, swd, diversity, privacy, kinetics modules).
NN_ACCURACY = "nn_accuracy"
NN_ACCURACY_REAL = "nn_accuracy_real"
NN_ACCURACY_FAKE = "nn_accuracy_fake"
NN_ACCURACY_GAP = "nn_accuracy_gap"  # |nn_accuracy - 0.5|; 0 is ideal
MOMENTS_W1 = "moments_w1"
SWD = "swd"
PRECISION = "precision"
RECALL = "recall"
DENSITY = "density"
COVERAGE = "coverage"
PRIVACY_CLOSE_SHARE = "privacy_close_share"
KINETICS_CURVE_ACCURACY = "kinetics_curve_accuracy"
KINETICS_CURVE_KAPPA = "kinetics_curve_kappa"
SAME = "same"

HIGHER_IS_BETTER = HIGHER_IS_BETTER | {
    PRECISION, RECALL, DENSITY, COVERAGE, KINETICS_CURVE_ACCURACY, KINETICS_CURVE_KAPPA,
}
#: Metrics where a smaller value means better synthetic data. A metric in
#: neither set (e.g. the raw 1-NN accuracy, ideal 0.5) has no direction and
#: cannot be ranked by SAMe.
LOWER_IS_BETTER: frozenset[str] = frozenset({
    MSE, MAE, LPIPS, FID_IMG, FID_RAD, FRD, NN_ACCURACY_GAP, MOMENTS_W1, SWD, PRIVACY_CLOSE_SHARE,
})

# Lesion-box (region of interest) variants of the paired metrics: the same metric over the
# lesion boxes of each slice only (breastflow.evaluate.checkpoint).
ROI_PREFIX = "roi_"
ROI_MSE = "roi_mse"
ROI_MAE = "roi_mae"
ROI_PSNR = "roi_psnr"
ROI_SSIM = "roi_ssim"
#: paired metric -> its lesion-box variant
ROI_METRICS: dict[str, str] = {MSE: ROI_MSE, MAE: ROI_MAE, PSNR: ROI_PSNR, SSIM: ROI_SSIM}
HIGHER_IS_BETTER = HIGHER_IS_BETTER | {ROI_PSNR, ROI_SSIM}
LOWER_IS_BETTER = LOWER_IS_BETTER | {ROI_MSE, ROI_MAE}

SD_SUFFIX = "_sd"


def sd_name(name: str) -> str:
    """Key of the standard deviation of metric ``name`` in a summary dict."""
    return f"{name}{SD_SUFFIX}"
