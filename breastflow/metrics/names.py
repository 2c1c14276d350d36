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
    "radiomics": FRD,
}

#: Metrics where a larger value means better synthetic data.
HIGHER_IS_BETTER: frozenset[str] = frozenset({PSNR, SSIM, MS_SSIM})

SD_SUFFIX = "_sd"


def sd_name(name: str) -> str:
    """Key of the standard deviation of metric ``name`` in a summary dict."""
    return f"{name}{SD_SUFFIX}"
