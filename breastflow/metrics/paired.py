"""Paired image metrics: a synthetic image against its real counterpart.

MSE, MAE, PSNR, SSIM and MS-SSIM, batched in torch (CPU or GPU), computed in
floating point at full resolution with an explicit data range. Paper 003's
reference pipeline computed MSE/MAE on uint8 tensors (wrapping modulo 256) on
224x224 8-bit JPEGs; nothing here quantises. MSE/MAE/PSNR are computed in
float64; SSIM/MS-SSIM filter in float32 by default after centring, or in
float64 on request (the kernels and their references: :mod:`breastflow.metrics.ssim`).

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

from breastflow.metrics.names import (
    LPIPS,
    MAE,
    MS_SSIM,
    MSE,
    PAIRED_METRICS,
    PSNR,
    SSIM,
    sd_name,
)
from breastflow.metrics.ssim import (
    EXACT_IN_FLOAT32,
    MS_SSIM_BETAS,
    SSIM_RADIUS,
    SSIM_WIN_SIZE,
    check_ms_ssim_size,
    filter_chunk_size,
    ssim_and_ms_ssim,
)


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


def _as_nchw(images: torch.Tensor | np.ndarray, what: str) -> torch.Tensor | np.ndarray:
    """Check and reshape to ``(N, C, H, W)`` without converting the dtype (batches are converted lazily)."""
    if not isinstance(images, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{what} must be a torch.Tensor or numpy array, got {type(images).__name__}")
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"{what} must have shape (N, H, W) or (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{what} is empty (N = 0)")
    return images


def _is_floating(images: torch.Tensor | np.ndarray) -> bool:
    if isinstance(images, np.ndarray):
        return images.dtype.kind in "fc"
    return images.is_floating_point() or images.is_complex()


def _to_float(batch: torch.Tensor | np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One batch as a float tensor on ``device``: ``dtype`` where that converts exactly, else float64.

    Integers (never wrapped) and floats keep their exact values: 8/16-bit data
    become float32 exactly; 32/64-bit integers and float64 become float64.
    """
    t = torch.from_numpy(np.ascontiguousarray(batch)) if isinstance(batch, np.ndarray) else batch
    exact = dtype == torch.float64 or t.dtype in EXACT_IN_FLOAT32
    return t.to(dtype if exact else torch.float64).to(device)


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


def paired_metrics(
    fake: torch.Tensor | np.ndarray,
    real: torch.Tensor | np.ndarray,
    data_range: float,
    metrics: Sequence[str] = (MSE, MAE, PSNR, SSIM),
    regions: torch.Tensor | np.ndarray | Sequence[Box | Sequence[int]] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 32,
    dtype: torch.dtype = torch.float32,
    lpips_net: str = "vgg",
    lpips_weights: Path | str | None = None,
    num_threads: int | None = None,
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
        batch_size: pairs converted and moved to ``device`` at a time (memory
            bound, no effect on values); on CPU, SSIM/MS-SSIM filtering works
            on smaller, cache-sized chunks within a batch.
        dtype: dtype of the SSIM/MS-SSIM filtering: ``torch.float32`` (default;
            images are centred and scaled by the data range first, which keeps
            it within ~1e-6 of float64) or ``torch.float64`` (exact to
            round-off, several times slower on CPU). MSE, MAE and PSNR are
            always computed in float64.
        lpips_net: LPIPS backbone (``vgg`` or ``alex``), when ``lpips`` is requested.
        lpips_weights: LPIPS state-dict file (default ``$BREASTFLOW_LPIPS_WEIGHTS``).
        num_threads: torch CPU threads for this call (restored afterwards);
            ``None`` keeps the process setting. Under competing CPU load, 1
            keeps the speed from collapsing (see ``docs/metrics.md``).

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
    if (SSIM in metrics or MS_SSIM in metrics) and min(h, w) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {(h, w)}")
    if MS_SSIM in metrics:
        check_ms_ssim_size((h, w), MS_SSIM_BETAS)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if num_threads is not None and num_threads < 1:
        raise ValueError(f"num_threads must be >= 1 or None, got {num_threads}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    args = (fake, real, fake_t, real_t, data_range, metrics, masks, dev, batch_size, dtype, lpips_net, lpips_weights)
    if num_threads is None:
        return _paired_metrics(*args)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        return _paired_metrics(*args)
    finally:
        torch.set_num_threads(previous_threads)


def _paired_metrics(fake, real, fake_t, real_t, data_range, metrics, masks, dev, batch_size, dtype, lpips_net,
                    lpips_weights) -> PairedResult:
    """The body of :func:`paired_metrics` after validation."""
    n = fake_t.shape[0]
    out: dict[str, list[torch.Tensor]] = {m: [] for m in metrics if m != LPIPS}
    r = SSIM_RADIUS
    if masks is not None and SSIM in out:
        bad = (~masks[:, r:-r, r:-r].flatten(1).any(1)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(
                f"regions of pairs {bad[:10]} lie entirely within {r} pixels of the border, where SSIM is not defined"
            )
    pixel_metrics = any(k in out for k in (MSE, MAE, PSNR))
    fake_is_float = _is_floating(fake_t)
    real_is_float = _is_floating(real_t)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            x = _to_float(fake_t[sl], dev, dtype)
            y = _to_float(real_t[sl], dev, dtype)
            for t, what, check in ((x, "fake", fake_is_float), (y, "real", real_is_float)):
                if check and not torch.isfinite(t).all():
                    bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten() + start
                    raise ValueError(f"{what} images {bad[:10].tolist()} contain NaN or inf")
            m = masks[sl].to(dev) if masks is not None else None
            if pixel_metrics:  # in float64: exact differences, float64 accumulation
                diff = x.to(torch.float64) - y.to(torch.float64)
                sq = (diff * diff).mean(1)
                ab = diff.abs_().mean(1)
                if m is not None:
                    mf = m.to(torch.float64)
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
            if SSIM in out or MS_SSIM in out:
                step = filter_chunk_size(x, dtype)
                for c in range(0, x.shape[0], step):
                    smap, ms = ssim_and_ms_ssim(
                        x[c : c + step], y[c : c + step], float(data_range), dtype, SSIM in out, MS_SSIM in out
                    )
                    if ms is not None:
                        out[MS_SSIM].append(ms)
                    if smap is not None:
                        smap = smap.mean(-1, dtype=torch.float64)  # (b, H - 10, W - 10), over channels
                        if m is None:
                            out[SSIM].append(smap.flatten(1).mean(1))
                        else:
                            mv = m[c : c + step, r:-r, r:-r].to(torch.float64)
                            out[SSIM].append((smap * mv).flatten(1).sum(1) / mv.flatten(1).sum(1))
    per_case = {k: torch.cat(v).cpu().numpy().astype(np.float64) for k, v in out.items()}
    if LPIPS in metrics:
        from breastflow.metrics.lpips import lpips_distance

        per_case[LPIPS] = lpips_distance(
            fake, real, float(data_range), net=lpips_net, weights=lpips_weights, device=dev, batch_size=batch_size
        )
    per_case = {m: per_case[m] for m in metrics}
    return PairedResult(per_case=per_case, data_range=float(data_range), region_restricted=masks is not None)
