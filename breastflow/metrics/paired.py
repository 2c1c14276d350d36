"""Paired image metrics: a synthetic image against its real counterpart.

MSE, MAE, PSNR, SSIM and MS-SSIM, batched in torch (CPU or GPU), computed in
floating point (float64 by default) at full resolution with an explicit data
range. Paper 003's reference pipeline computed MSE/MAE on uint8 tensors
(wrapping modulo 256) on 224x224 8-bit JPEGs; nothing here quantises.

* SSIM is Wang et al. 2004 (IEEE TIP 13(4), Eq. 13) with a Gaussian window
  (sigma 1.5, truncated at 3.5 sigma -> 11x11), K1 = 0.01, K2 = 0.03 and
  population covariances, i.e. exactly scikit-image's
  ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=R)``: the SSIM map is computed where
  the window fits inside the image ((win - 1) // 2 = 5 pixels cropped at each
  border) and averaged there (over channels too).
* MS-SSIM is Wang, Simoncelli & Bovik 2003 with the five standard exponents,
  identical to torchmetrics' ``MultiScaleStructuralSimilarityIndexMeasure``
  defaults (Gaussian 11x11, sigma 1.5, reflect padding, ReLU normalisation,
  2x2 average pooling between scales).
* PSNR = 10 log10(R^2 / MSE) (``skimage.metrics.peak_signal_noise_ratio``);
  ``inf`` for identical images.

Regions (lesion bounding boxes or masks, one per pair) restrict MSE/MAE/PSNR to
the region's pixels and average the SSIM map over the region (intersected with
the valid SSIM area). MS-SSIM is defined on whole images only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from breastflow.metrics.names import LPIPS, MAE, MS_SSIM, MSE, PAIRED_METRICS, PSNR, SSIM, sd_name

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Window size implied by sigma 1.5 truncated at 3.5 sigma (scikit-image / torchmetrics).
SSIM_WIN_SIZE = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


class Box(NamedTuple):
    """A half-open pixel box ``[row0, row1) x [col0, col1)`` in image coordinates."""

    row0: int
    col0: int
    row1: int
    col1: int


@dataclass
class PairedResult:
    """Per-case paired metric values.

    Attributes:
        per_case: metric name (``names.py`` constant) -> array ``(N,)`` of values.
        data_range: the data range the metrics were computed with.
    """

    per_case: dict[str, np.ndarray]
    data_range: float
    region_restricted: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Flat dict: ``"<name>"`` -> mean over pairs, ``"<name>_sd"`` -> SD (ddof=0).

        Infinite PSNR values (identical pairs) make the PSNR mean ``inf``.
        """
        out: dict[str, float] = {}
        for name, values in self.per_case.items():
            with np.errstate(invalid="ignore"):
                out[name] = float(np.mean(values))
                out[sd_name(name)] = float(np.std(values))
        return out


def _as_nchw(images: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if images.dtype == np.uint16 or images.dtype == np.uint32:
            images = images.astype(np.int64)
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor or numpy array, got {type(images).__name__}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"{what} must have shape (N, H, W) or (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{what} is empty (N = 0)")
    return images


def regions_to_masks(
    regions: torch.Tensor | np.ndarray | Sequence[Box | Sequence[int]], n: int, height: int, width: int
) -> torch.Tensor:
    """Turn per-pair regions into a boolean mask tensor ``(N, H, W)``.

    Args:
        regions: a boolean ``(N, H, W)`` mask or ``N`` boxes ``(row0, col0, row1, col1)``.
        n, height, width: expected number of pairs and image size.

    Raises:
        ValueError: wrong count or shape, a box outside the image or an empty region.
    """
    if isinstance(regions, (torch.Tensor, np.ndarray)):
        masks = torch.as_tensor(regions)
        if masks.dtype != torch.bool:
            raise ValueError(f"region masks must be boolean, got {masks.dtype}")
        if tuple(masks.shape) != (n, height, width):
            raise ValueError(f"region masks have shape {tuple(masks.shape)}, expected {(n, height, width)}")
    else:
        boxes = list(regions)
        if len(boxes) != n:
            raise ValueError(f"got {len(boxes)} region boxes for {n} image pairs")
        masks = torch.zeros((n, height, width), dtype=torch.bool)
        for i, raw in enumerate(boxes):
            box = Box(*(int(v) for v in raw))
            if not (0 <= box.row0 < box.row1 <= height and 0 <= box.col0 < box.col1 <= width):
                raise ValueError(f"region box {i} {tuple(box)} is empty or outside the {height}x{width} image")
            masks[i, box.row0 : box.row1, box.col0 : box.col1] = True
    empty = (~masks.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"region masks of pairs {empty[:10]} are empty")
    return masks


def gaussian_window_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 11-tap Gaussian (sigma 1.5) of scipy/scikit-image/torchmetrics, shape ``(11,)``."""
    radius = (SSIM_WIN_SIZE - 1) // 2
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Gaussian filter, 'valid' mode. ``x`` (B, C, H, W) -> (B, C, H-10, W-10).

    float32: one 11x11 convolution (oneDNN/cuDNN are fastest there);
    float64: two separable 1-D passes (CPU float64 2-D convolution is slow).
    """
    c = x.shape[1]
    if x.dtype == torch.float32:
        k2 = (g[:, None] * g[None, :]).expand(c, 1, -1, -1)
        return F.conv2d(x, k2, groups=c)
    kh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def _ssim_terms(
    x: torch.Tensor, y: torch.Tensor, data_range: float, pad: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and contrast-structure map, both (B, C, H', W').

    ``pad=False``: valid filtering (scikit-image, H' = H - 10). ``pad=True``:
    reflect padding first (torchmetrics, H' = H).
    """
    g = gaussian_window_1d(x.dtype, x.device)
    if pad:
        r = (SSIM_WIN_SIZE - 1) // 2
        x = F.pad(x, (r, r, r, r), mode="reflect")
        y = F.pad(y, (r, r, r, r), mode="reflect")
    b = x.shape[0]
    stats = _filter_valid(torch.cat((x, y, x * x, y * y, x * y)), g).split(b)
    ux, uy, uxx, uyy, uxy = stats
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    vx = uxx - ux * ux
    vy = uyy - uy * uy
    if pad:  # torchmetrics clamps variances at 0
        vx, vy = vx.clamp(min=0), vy.clamp(min=0)
    vxy = uxy - ux * uy
    cs = (2 * vxy + c2) / (vx + vy + c2)
    ssim_map = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
    return ssim_map, cs


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """scikit-image-equivalent SSIM map of the valid area.

    Args:
        x, y: ``(B, C, H, W)`` float tensors, H and W >= 11.
        data_range: dynamic range R of the data (e.g. 255 or 65535).

    Returns:
        ``(B, H - 10, W - 10)`` SSIM map averaged over channels; pixel (i, j) of
        the map belongs to image pixel (i + 5, j + 5).
    """
    if min(x.shape[-2:]) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {tuple(x.shape[-2:])}")
    return _ssim_terms(x, y, data_range, pad=False)[0].mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, betas: Sequence[float] = MS_SSIM_BETAS) -> torch.Tensor:
    """Per-image MS-SSIM, identical to torchmetrics' defaults.

    Args:
        x, y: ``(B, C, H, W)`` float tensors; H and W must exceed
            ``(11 - 1) * (len(betas) - 1) ** 2`` (160 for five scales).
        data_range: dynamic range R.

    Returns:
        ``(B,)`` MS-SSIM values.
    """
    div = max(1, len(betas) - 1) ** 2
    if min(x.shape[-2:]) // div <= SSIM_WIN_SIZE - 1:
        raise ValueError(
            f"MS-SSIM with {len(betas)} scales needs images larger than {(SSIM_WIN_SIZE - 1) * div} pixels "
            f"per side, got {tuple(x.shape[-2:])}"
        )
    r = (SSIM_WIN_SIZE - 1) // 2
    values = []
    for level in range(len(betas)):
        smap, cs = _ssim_terms(x, y, data_range, pad=True)
        if level == len(betas) - 1:
            values.append(torch.relu(smap.flatten(1).mean(1)))
        else:
            values.append(torch.relu(cs[..., r:-r, r:-r].flatten(1).mean(1)))
            x = F.avg_pool2d(x, 2)
            y = F.avg_pool2d(y, 2)
    stack = torch.stack(values)
    exps = torch.tensor(betas, dtype=stack.dtype, device=stack.device).view(-1, 1)
    return torch.prod(stack**exps, dim=0)


def paired_metrics(
    fake: torch.Tensor | np.ndarray,
    real: torch.Tensor | np.ndarray,
    data_range: float,
    metrics: Sequence[str] = (MSE, MAE, PSNR, SSIM),
    regions: torch.Tensor | np.ndarray | Sequence[Box | Sequence[int]] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    dtype: torch.dtype = torch.float64,
    lpips_net: str = "vgg",
    lpips_weights: Path | str | None = None,
) -> PairedResult:
    """Compute paired metrics between synthetic images and their real counterparts.

    Args:
        fake: synthetic images ``(N, C, H, W)`` or ``(N, H, W)``, any real dtype
            (integers are converted exactly, never wrapped).
        real: real counterparts, same shape as ``fake``.
        data_range: dynamic range R of the data (e.g. 255 for 8-bit, 65535 or
            4095 for 16/12-bit, 1.0 for [0, 1] floats). Required: never guessed.
        metrics: names from :mod:`breastflow.metrics.names` among
            ``mse, mae, psnr, ssim, ms_ssim, lpips``.
        regions: optional per-pair restriction: boolean masks ``(N, H, W)`` or
            ``N`` boxes ``(row0, col0, row1, col1)`` (half-open).
        device: torch device to compute on (default: CPU).
        batch_size: pairs per batch (memory bound, no effect on values).
        dtype: computation dtype (float64 default; float32 is faster on GPU).
        lpips_net: LPIPS backbone (``vgg`` or ``alex``), when ``lpips`` is requested.
        lpips_weights: LPIPS state-dict file (default ``$BREASTFLOW_LPIPS_WEIGHTS``).

    Returns:
        :class:`PairedResult` with ``per_case[name]`` of shape ``(N,)``.

    Raises:
        ValueError: unknown metric, shape mismatch, empty input, NaN/inf values,
            non-positive data range, images too small, regions with MS-SSIM/LPIPS.
        WeightsNotFoundError: LPIPS requested without its weight file.
    """
    valid = (*PAIRED_METRICS, LPIPS)
    unknown = [m for m in metrics if m not in valid]
    if unknown:
        raise ValueError(f"unknown paired metric(s) {unknown}; valid: {list(valid)}")
    if not metrics:
        raise ValueError("no metrics requested")
    if not (isinstance(data_range, (int, float)) and np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    fake_t = _as_nchw(fake, "fake")
    real_t = _as_nchw(real, "real")
    if fake_t.shape != real_t.shape:
        raise ValueError(f"fake {tuple(fake_t.shape)} and real {tuple(real_t.shape)} images differ in shape")
    n, _, h, w = fake_t.shape
    masks = regions_to_masks(regions, n, h, w) if regions is not None else None
    if masks is not None and (MS_SSIM in metrics or LPIPS in metrics):
        raise ValueError("MS-SSIM and LPIPS are computed on whole images only; request them without regions")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    out: dict[str, list[torch.Tensor]] = {m: [] for m in metrics if m != LPIPS}
    r = (SSIM_WIN_SIZE - 1) // 2
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        x = fake_t[sl].to(device=dev, dtype=dtype)
        y = real_t[sl].to(device=dev, dtype=dtype)
        for t, what in ((x, "fake"), (y, "real")):
            if not torch.isfinite(t).all():
                bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten() + start
                raise ValueError(f"{what} images {bad[:10].tolist()} contain NaN or inf")
        m = masks[sl].to(dev) if masks is not None else None
        sq = ((x - y) ** 2).mean(1)
        ab = (x - y).abs().mean(1)
        if m is not None:
            mf = m.to(dtype)
            count = mf.flatten(1).sum(1)
            mse = (sq * mf).flatten(1).sum(1) / count
            mae = (ab * mf).flatten(1).sum(1) / count
        else:
            mse = sq.flatten(1).mean(1)
            mae = ab.flatten(1).mean(1)
        if MSE in out:
            out[MSE].append(mse)
        if MAE in out:
            out[MAE].append(mae)
        if PSNR in out:
            out[PSNR].append(10 * torch.log10(data_range**2 / mse))
        if SSIM in out:
            smap = ssim_map(x, y, float(data_range))
            if m is not None:
                mv = m[:, r:-r, r:-r].to(dtype)
                count = mv.flatten(1).sum(1)
                if (count == 0).any():
                    bad = (count == 0).nonzero().flatten() + start
                    raise ValueError(
                        f"regions of pairs {bad[:10].tolist()} lie entirely within {r} pixels of the border, "
                        "where SSIM is not defined"
                    )
                out[SSIM].append((smap * mv).flatten(1).sum(1) / count)
            else:
                out[SSIM].append(smap.flatten(1).mean(1))
        if MS_SSIM in out:
            out[MS_SSIM].append(ms_ssim(x, y, float(data_range)))
    per_case = {k: torch.cat(v).cpu().numpy().astype(np.float64) for k, v in out.items()}
    if LPIPS in metrics:
        from breastflow.metrics.lpips import lpips_distance

        per_case[LPIPS] = lpips_distance(
            fake_t, real_t, float(data_range), net=lpips_net, weights=lpips_weights, device=dev, batch_size=batch_size
        )
    per_case = {m: per_case[m] for m in metrics}
    return PairedResult(per_case=per_case, data_range=float(data_range), region_restricted=masks is not None)
