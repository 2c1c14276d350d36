"""SSIM and MS-SSIM filtering kernels (Wang et al. 2004; Wang, Simoncelli & Bovik 2003).

Batched in torch (CPU or GPU). SSIM/MS-SSIM filter in float32 by default on
images shifted to start at 0 and scaled by the data range (within 1e-6 of
float64, see :func:`_centre`), or in float64 on request.

Speed: the five window means (x, y, x^2, y^2, xy) of all channels are one
channels-last depthwise separable convolution; SSIM and MS-SSIM share the
full-resolution filtering, and MS-SSIM's finer scales filter without padding
(see :func:`ssim_and_ms_ssim`).

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

:func:`breastflow.metrics.paired.paired_metrics` is the batched, validated
entry point; :func:`ssim_map` and :func:`ms_ssim` are the direct calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Window size implied by sigma 1.5 truncated at 3.5 sigma (scikit-image / torchmetrics).
SSIM_WIN_SIZE = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_RADIUS = (SSIM_WIN_SIZE - 1) // 2


#: Source dtypes whose values float32 represents exactly.
EXACT_IN_FLOAT32 = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.uint16, torch.float16, torch.bfloat16,
                    torch.float32)  # fmt: skip


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 where it holds ``x``'s values exactly, else float64."""
    return torch.float32 if x.dtype in EXACT_IN_FLOAT32 else torch.float64


def gaussian_window_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 11-tap Gaussian (sigma 1.5) of scipy/scikit-image/torchmetrics, shape ``(11,)``."""
    x = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64)
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
    return out.reshape(b, h - 2 * SSIM_RADIUS, w - 2 * SSIM_RADIUS, c, 5)


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
    none to remove). Both maps are clamped to ``[-1, 1]``, their exact range:
    in float32, identical images otherwise reached 1.00000002.

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
    cs = torch.addcmul(moments[..., 4], ux, uy, value=-1).mul_(2).add_(c2).div_(var.sum(-1).add_(c2)).clamp_(-1, 1)
    if not luminance:
        return None, cs
    ax, ay = ux + mx, uy + my
    lum = (ax * ay).mul_(2).add_(c1).div_(torch.addcmul(ay * ay, ax, ax).add_(c1))
    return lum.mul_(cs).clamp_(-1, 1), cs


#: On CPU, SSIM filters this many bytes of each image stack at a time: the five
#: window-mean maps then stay in cache (2 MiB: two 512x512 float32 images, one
#: float64; about 2x faster than 16 at once). Chunking does not change values.
_CPU_FILTER_CHUNK_BYTES = 2 << 20


def filter_chunk_size(x: torch.Tensor, dtype: torch.dtype) -> int:
    """Pairs per SSIM filtering chunk: cache-sized on CPU, the whole batch on accelerators.

    Args:
        x: one batch ``(B, C, H, W)`` on its compute device.
        dtype: the filtering dtype.
    """
    if x.device.type != "cpu":
        return max(1, x.shape[0])
    per_image = x[0].numel() * torch.empty((), dtype=dtype).element_size()
    return max(1, _CPU_FILTER_CHUNK_BYTES // per_image)


def check_ms_ssim_size(shape: Sequence[int], betas: Sequence[float]) -> None:
    """Check that images of ``shape`` (``(..., H, W)``) survive ``len(betas)`` MS-SSIM scales.

    Raises:
        ValueError: H or W is not larger than ``(11 - 1) * (len(betas) - 1) ** 2``.
    """
    div = max(1, len(betas) - 1) ** 2
    if min(shape[-2:]) // div <= SSIM_WIN_SIZE - 1:
        raise ValueError(
            f"MS-SSIM with {len(betas)} scales needs images larger than {(SSIM_WIN_SIZE - 1) * div} pixels "
            f"per side, got {tuple(shape[-2:])}"
        )


def ssim_and_ms_ssim(
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
            pad = (SSIM_RADIUS,) * 4
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
    """scikit-image-equivalent SSIM map of the valid area.

    Whole-image (and region) values: :func:`breastflow.metrics.paired.paired_metrics`.

    Args:
        x, y: ``(B, C, H, W)`` tensors, H and W >= 11; filtered in float64 if
            ``x`` is float64 (or an integer type float32 cannot hold exactly),
            else in float32 after centring.
        data_range: dynamic range R of the data (e.g. 255 or 65535).

    Returns:
        ``(B, H - 10, W - 10)`` SSIM map averaged over channels; pixel (i, j) of
        the map belongs to image pixel (i + 5, j + 5).

    Raises:
        ValueError: images smaller than the 11x11 window.
    """
    if min(x.shape[-2:]) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got {tuple(x.shape[-2:])}")
    dtype = compute_dtype(x)
    smap, _ = ssim_and_ms_ssim(x, y, data_range, dtype, want_ssim=True, want_ms_ssim=False)
    return smap.mean(-1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, betas: Sequence[float] = MS_SSIM_BETAS) -> torch.Tensor:
    """Per-image MS-SSIM, identical to torchmetrics' defaults (dtype rule as :func:`ssim_map`).

    Args:
        x, y: ``(B, C, H, W)`` tensors; H and W must exceed
            ``(11 - 1) * (len(betas) - 1) ** 2`` (160 for five scales).
        data_range: dynamic range R.

    Returns:
        ``(B,)`` MS-SSIM values (float64).

    Raises:
        ValueError: images too small for ``len(betas)`` scales.
    """
    check_ms_ssim_size(x.shape, betas)
    return ssim_and_ms_ssim(x, y, data_range, compute_dtype(x), want_ssim=False, want_ms_ssim=True, betas=betas)[1]
