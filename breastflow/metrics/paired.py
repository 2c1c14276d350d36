"""Paired image metrics: a synthetic image against its real counterpart.

MSE, MAE, PSNR, SSIM and MS-SSIM, batched in torch (CPU or GPU), computed in
floating point at full resolution with an explicit data range. Paper 003's
reference pipeline computed MSE/MAE on uint8 tensors (wrapping modulo 256) on
224x224 8-bit JPEGs; nothing here quantises. MSE/MAE/PSNR are computed in
float64; SSIM/MS-SSIM filter in float32 by default on images shifted to start
at 0 and scaled by the data range (within 1e-6 of float64, see
:func:`_centre`), or in float64 on request.

Speed: the five window means (x, y, x^2, y^2, xy) of all channels are one
channels-last depthwise separable convolution; SSIM and MS-SSIM share the
full-resolution filtering, and MS-SSIM's finer scales filter without padding
(see :func:`_ssim_and_ms_ssim`).

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
_RADIUS = (SSIM_WIN_SIZE - 1) // 2


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


#: Source dtypes whose values float32 represents exactly.
_EXACT_IN_FLOAT32 = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.float16, torch.bfloat16,
                     torch.float32)  # fmt: skip


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 where it holds ``x``'s values exactly, else float64."""
    return torch.float32 if x.dtype in _EXACT_IN_FLOAT32 else torch.float64


def _to_float(batch: torch.Tensor | np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One batch as a float tensor on ``device``: ``dtype`` where that converts exactly, else float64.

    Integers (never wrapped) and floats keep their exact values: 8/16-bit data
    become float32 exactly; 32/64-bit integers and float64 become float64.
    """
    t = torch.from_numpy(np.ascontiguousarray(batch)) if isinstance(batch, np.ndarray) else batch
    exact = dtype == torch.float64 or t.dtype in _EXACT_IN_FLOAT32
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


def gaussian_window_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 11-tap Gaussian (sigma 1.5) of scipy/scikit-image/torchmetrics, shape ``(11,)``."""
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter_valid_shifted(z: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """Separable filter, 'valid' mode, as weighted sums of shifted views (one pass per tap).

    Args:
        z: ``(B, H, W, K)`` tensor (channels last).
        taps: the 1-D filter, applied along H then W.

    Returns:
        ``(B, H - n + 1, W - n + 1, K)`` with ``n = len(taps)``.
    """
    n = len(taps)
    h, w = z.shape[1] - n + 1, z.shape[2] - n + 1
    rows = z[:, 0:h] * taps[0]
    for k in range(1, n):
        rows.add_(z[:, k : k + h], alpha=taps[k])
    out = rows[:, :, 0:w] * taps[0]
    for k in range(1, n):
        out.add_(rows[:, :, k : k + w], alpha=taps[k])
    return out


def _gaussian_moments(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gaussian-filtered x, y, x^2, y^2, xy in 'valid' mode, in one grouped convolution.

    The five maps of all channels are stacked as the channels of one
    channels-last tensor and filtered by two separable 1-D passes (11x1 then
    1x11). On CPU, depthwise float32 convolution is several times faster in
    channels-last layout; float64 has no fast convolution kernel on CPU and is
    filtered by shifted sums instead (:func:`_filter_valid_shifted`).

    Args:
        x, y: ``(B, C, H, W)`` float tensors, H and W >= 11.

    Returns:
        ``(B, H - 10, W - 10, C, 5)``: the window means of x, y, x^2, y^2, xy.
    """
    b, c, h, w = x.shape
    k = 5 * c
    g = gaussian_window_1d(x.dtype, x.device)
    xl, yl = x.permute(0, 2, 3, 1), y.permute(0, 2, 3, 1)
    # (B, H, W, C, 5) contiguous == (B, 5C, H, W) in channels-last memory layout
    xy = torch.stack((xl, yl), dim=-1)
    stacked = torch.cat((xy, xy * xy, (xl * yl).unsqueeze(-1)), dim=-1).view(b, h, w, k).permute(0, 3, 1, 2)
    if x.dtype == torch.float64:
        out = _filter_valid_shifted(stacked.permute(0, 2, 3, 1), g.tolist())
    else:
        kh = g.view(1, 1, -1, 1).expand(k, 1, -1, 1)
        kw = g.view(1, 1, 1, -1).expand(k, 1, 1, -1)
        out = F.conv2d(F.conv2d(stacked, kh, groups=k), kw, groups=k).permute(0, 2, 3, 1)
    return out.reshape(b, h - 2 * _RADIUS, w - 2 * _RADIUS, c, 5)


def _centre(
    x: torch.Tensor, y: torch.Tensor, data_range: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shift each image (per channel) to start at 0 and divide by the data range, as ``dtype``.

    The local variance ``E[x^2] - E[x]^2`` cancels two numbers of size ``x^2``;
    float32 keeps it accurate only where ``x`` is small. Subtracting the
    image minimum (not the mean) leaves flat background, usually the minimum
    (air around the breast), at exactly 0, and takes out any constant offset
    of the stored values. SSIM's variances and covariance do not change under
    a shift; the luminance term adds the offsets back.

    Returns:
        ``x', y'`` ``(B, C, H, W)`` in ``dtype`` and the offsets ``mx, my`` ``(B, 1, 1, C)``,
        all in units of the data range.
    """
    if x.dtype != dtype:  # float64 data for float32 filtering: shift and scale in float64, round once
        x, y = x.to(torch.float64), y.to(torch.float64)
    mx = x.amin(dim=(-2, -1), keepdim=True)
    my = y.amin(dim=(-2, -1), keepdim=True)
    xc = ((x - mx) / data_range).to(dtype)
    yc = ((y - my) / data_range).to(dtype)
    to_last = (x.shape[0], 1, 1, x.shape[1])
    return xc, yc, (mx / data_range).to(dtype).view(to_last), (my / data_range).to(dtype).view(to_last)


def _ssim_cs(
    x: torch.Tensor, y: torch.Tensor, mx: torch.Tensor, my: torch.Tensor, luminance: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """SSIM map and contrast-structure map of centred images (valid area).

    Variances are clamped at 0: exact variances are non-negative, so this only
    removes round-off (torchmetrics does the same; scikit-image in float64 has
    none to remove).

    Args:
        x, y: centred images ``(B, C, H, W)`` in units of the data range.
        mx, my: their offsets ``(B, 1, 1, C)``.
        luminance: also compute the SSIM map (else ``None`` is returned for it).

    Returns:
        ``(ssim_map, cs_map)``, each ``(B, H - 10, W - 10, C)``.
    """
    moments = _gaussian_moments(x, y)
    mu = moments[..., :2]  # ux, uy
    var = (moments[..., 2:4] - mu * mu).clamp_(min=0)  # vx, vy
    ux, uy = mu.unbind(-1)
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    cs = torch.addcmul(moments[..., 4], ux, uy, value=-1).mul_(2).add_(c2).div_(var.sum(-1).add_(c2))
    if not luminance:
        return None, cs
    ax, ay = ux + mx, uy + my
    lum = (ax * ay).mul_(2).add_(c1).div_(torch.addcmul(ay * ay, ax, ax).add_(c1))
    return lum.mul_(cs), cs


#: On CPU, SSIM filters this many bytes of each image stack at a time: the five
#: window-mean maps then stay in cache (2 MiB: two 512x512 float32 images, one
#: float64; about 2x faster than 16 at once). Chunking does not change values.
_CPU_FILTER_CHUNK_BYTES = 2 << 20


def _filter_chunk(x: torch.Tensor, dtype: torch.dtype) -> int:
    """Pairs per SSIM filtering chunk: cache-sized on CPU, the whole batch on accelerators."""
    if x.device.type != "cpu":
        return max(1, x.shape[0])
    per_image = x[0].numel() * torch.empty((), dtype=dtype).element_size()
    return max(1, _CPU_FILTER_CHUNK_BYTES // per_image)


def _check_ms_ssim_size(shape: Sequence[int], betas: Sequence[float]) -> None:
    div = max(1, len(betas) - 1) ** 2
    if min(shape[-2:]) // div <= SSIM_WIN_SIZE - 1:
        raise ValueError(
            f"MS-SSIM with {len(betas)} scales needs images larger than {(SSIM_WIN_SIZE - 1) * div} pixels "
            f"per side, got {tuple(shape[-2:])}"
        )


def _ssim_and_ms_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float,
    dtype: torch.dtype,
    want_ssim: bool,
    want_ms_ssim: bool,
    betas: Sequence[float] = MS_SSIM_BETAS,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """SSIM map and MS-SSIM sharing the full-resolution filtering.

    MS-SSIM (torchmetrics) pads by reflection at every scale but averages the
    contrast-structure map of scales 1..4 over the interior only, which is the
    valid-mode map scikit-image's SSIM uses: scale 1 reuses the SSIM
    filtering, scales 2..4 filter without padding, and only the coarsest scale
    (whose full SSIM map is averaged) is padded.

    Args:
        x, y: ``(B, C, H, W)`` float tensors (any float dtype).
        data_range: dynamic range R.
        dtype: filtering dtype (float32 or float64); see :func:`_centre`.
        want_ssim, want_ms_ssim: which results to compute.
        betas: MS-SSIM exponents, one per scale.

    Returns:
        ``(ssim_map (B, H - 10, W - 10, C) or None, ms_ssim (B,) float64 or None)``.
    """
    xc, yc, mx, my = _centre(x, y, data_range, dtype)
    smap, cs = _ssim_cs(xc, yc, mx, my, luminance=want_ssim)
    if not want_ms_ssim:
        return smap, None
    values = []
    for level in range(len(betas)):
        if level == len(betas) - 1:
            pad = (_RADIUS,) * 4
            smap_last, _ = _ssim_cs(F.pad(xc, pad, mode="reflect"), F.pad(yc, pad, mode="reflect"), mx, my)
            values.append(torch.relu(smap_last.flatten(1).mean(1)))
            break
        if level > 0:
            _, cs = _ssim_cs(xc, yc, mx, my, luminance=False)
        values.append(torch.relu(cs.flatten(1).mean(1)))
        xc, yc = F.avg_pool2d(xc, 2), F.avg_pool2d(yc, 2)
    stack = torch.stack(values).to(torch.float64)
    exps = torch.tensor(betas, dtype=torch.float64, device=stack.device).view(-1, 1)
    return smap, torch.prod(stack**exps, dim=0)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """scikit-image-equivalent SSIM map of the valid area (see :func:`paired_metrics` for whole images).

    Args:
        x, y: ``(B, C, H, W)`` tensors, H and W >= 11; filtered in float64 if
            ``x`` is float64 (or an integer type float32 cannot hold exactly),
            else in float32 after centring.
        data_range: dynamic range R of the data (e.g. 255 or 65535).

    Returns:
        ``(B, H - 10, W - 10)`` SSIM map averaged over channels; pixel (i, j) of
        the map belongs to image pixel (i + 5, j + 5).
    """
    if min(x.shape[-2:]) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {tuple(x.shape[-2:])}")
    dtype = _compute_dtype(x)
    smap, _ = _ssim_and_ms_ssim(x, y, data_range, dtype, want_ssim=True, want_ms_ssim=False)
    return smap.mean(-1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, betas: Sequence[float] = MS_SSIM_BETAS) -> torch.Tensor:
    """Per-image MS-SSIM, identical to torchmetrics' defaults (dtype rule as :func:`ssim_map`).

    Args:
        x, y: ``(B, C, H, W)`` tensors; H and W must exceed
            ``(11 - 1) * (len(betas) - 1) ** 2`` (160 for five scales).
        data_range: dynamic range R.

    Returns:
        ``(B,)`` MS-SSIM values (float64).
    """
    _check_ms_ssim_size(x.shape, betas)
    return _ssim_and_ms_ssim(x, y, data_range, _compute_dtype(x), want_ssim=False, want_ms_ssim=True, betas=betas)[1]


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
        _check_ms_ssim_size((h, w), MS_SSIM_BETAS)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    out: dict[str, list[torch.Tensor]] = {m: [] for m in metrics if m != LPIPS}
    r = _RADIUS
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
                step = _filter_chunk(x, dtype)
                for c in range(0, x.shape[0], step):
                    smap, ms = _ssim_and_ms_ssim(
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
