"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, Sec. 5; MammoGAN's checkpoint criterion).

Follows progressive GAN's ``metrics/sliced_wasserstein.py``:

1. Build a Laplacian pyramid of every image (5x5 binomial filter, mirror
   borders, as ``cv2.pyrDown`` / ``cv2.pyrUp``), one level per resolution
   from the image size down to 16 px.
2. At every level draw ``nhoods_per_image`` random 7x7 neighbourhoods per
   image; each neighbourhood (all channels) is one descriptor.
3. Normalise the descriptors per channel to zero mean and unit SD
   (:attr:`DescriptorNormalisation.PER_SET`: each set by its own statistics,
   exactly as the reference; ``REAL_REFERENCE``: both sets by the real
   set's statistics, which also sees global brightness / contrast shifts).
4. Sliced Wasserstein distance between the real and synthetic descriptor
   sets: ``dir_repeats`` x ``dirs_per_repeat`` random unit directions,
   project, sort, mean absolute difference of the sorted projections
   (= the empirical 1-D W1 for equal set sizes), averaged.
5. Multiply by 1e3 as the reference reports; ``swd`` is the mean over levels.

Deterministic for a given ``seed``. Sets of different sizes are reduced to
the smaller size by drawing images without replacement.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from breastflow.metrics import names

_BINOMIAL_5x5 = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float64) / 256.0
MIN_RESOLUTION = 16


class DescriptorNormalisation(str, enum.Enum):
    """How descriptors are standardised before slicing."""

    PER_SET = "per_set"
    REAL_REFERENCE = "real_reference"


@dataclass(frozen=True)
class SWDConfig:
    """Parameters of :func:`sliced_wasserstein_distance`; defaults are Karras et al.'s."""

    nhood_size: int = 7
    nhoods_per_image: int = 128
    dir_repeats: int = 4
    dirs_per_repeat: int = 128
    normalisation: DescriptorNormalisation = DescriptorNormalisation.PER_SET
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nhood_size < 1 or self.nhood_size % 2 == 0:
            raise ValueError(f"nhood_size must be odd and positive, got {self.nhood_size}")
        for field in ("nhoods_per_image", "dir_repeats", "dirs_per_repeat"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")


def swd_level_name(resolution: int) -> str:
    """Flat-dict key of the SWD at one pyramid level, e.g. ``swd_64``."""
    return f"{names.SWD}_{resolution}"


@dataclass(frozen=True)
class SWDResult:
    """SWD (x 1e3) per pyramid resolution and their mean."""

    per_level: dict[int, float]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_level.values())))

    def to_dict(self) -> dict[str, float]:
        out = {names.SWD: self.mean}
        out.update({swd_level_name(r): v for r, v in self.per_level.items()})
        return out


def pyr_down(batch: np.ndarray) -> np.ndarray:
    """Blur with the 5x5 binomial filter and keep every second pixel. ``(N, C, H, W) -> (N, C, ceil(H/2), ceil(W/2))``."""
    return ndimage.convolve(batch, _BINOMIAL_5x5[None, None], mode="mirror")[:, :, ::2, ::2]


def pyr_up(batch: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-interleave to ``shape`` and blur with 4x the binomial filter. ``(N, C, h, w) -> (N, C, *shape)``."""
    up = np.zeros(batch.shape[:2] + tuple(shape), dtype=batch.dtype)
    up[:, :, ::2, ::2] = batch
    return ndimage.convolve(up, 4.0 * _BINOMIAL_5x5[None, None], mode="mirror")


def laplacian_pyramid(batch: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Laplacian pyramid, finest level first; the last level is the Gaussian residual.

    ``level[i] + pyr_up(gauss[i + 1]) == gauss[i]`` exactly, so the pyramid
    reconstructs the input.

    Args:
        batch: ``(N, C, H, W)`` float.
        num_levels: number of levels (>= 1).
    """
    pyramid = [np.asarray(batch, dtype=np.float64)]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1], pyramid[-2].shape[2:])
    return pyramid


def _descriptors(level: np.ndarray, nhood_size: int, nhoods_per_image: int, rng: np.random.Generator) -> np.ndarray:
    """Random ``nhood_size``^2 neighbourhoods: ``(N, C, H, W) -> (N * nhoods_per_image, C, s, s)``."""
    n, c, h, w = level.shape
    half = nhood_size // 2
    count = n * nhoods_per_image
    nh, ch, y, x = np.ogrid[0:count, 0:c, -half : half + 1, -half : half + 1]
    img = nh // nhoods_per_image
    x = x + rng.integers(half, w - half, size=(count, 1, 1, 1))
    y = y + rng.integers(half, h - half, size=(count, 1, 1, 1))
    return level[img, ch, y, x]


def _standardise(desc: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return ((desc - mean) / np.where(sd > 0, sd, 1.0)).reshape(desc.shape[0], -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, dir_repeats: int, dirs_per_repeat: int, rng: np.random.Generator) -> float:
    """Sliced W1 between two equal-size point sets.

    Args:
        a: ``(K, D)`` descriptors.
        b: ``(K, D)`` descriptors.

    Raises:
        ValueError: if the shapes differ.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"descriptor sets must be equal-shape (K, D), got {a.shape} and {b.shape}")
    results = []
    for _ in range(dir_repeats):
        dirs = rng.standard_normal((a.shape[1], dirs_per_repeat))
        dirs /= np.sqrt(np.sum(dirs * dirs, axis=0, keepdims=True))
        # (directions, K), sorted along the contiguous axis (much faster than axis 0 of (K, directions))
        proj_a = np.sort(np.ascontiguousarray((a @ dirs).T), axis=1)
        proj_b = np.sort(np.ascontiguousarray((b @ dirs).T), axis=1)
        results.append(np.mean(np.abs(proj_a - proj_b)))
    return float(np.mean(results))


def _as_nchw(images: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"{name} images must be (N, H, W) or (N, C, H, W), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} set is empty")
    if min(arr.shape[2:]) < MIN_RESOLUTION:
        raise ValueError(f"{name} images are {arr.shape[2:]}; SWD needs at least {MIN_RESOLUTION}x{MIN_RESOLUTION}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} images hold NaN or infinite values")
    return arr


def sliced_wasserstein_distance(real: np.ndarray, fake: np.ndarray, config: SWDConfig | None = None) -> SWDResult:
    """Multi-scale SWD between two image sets (Karras et al. 2018).

    Args:
        real: ``(N, H, W)`` or ``(N, C, H, W)`` real images, any intensity scale.
        fake: ``(M, H, W)`` or ``(M, C, H, W)`` synthetic images, same ``C, H, W``.
        config: :class:`SWDConfig`; Karras et al.'s defaults when ``None``.

    Returns:
        :class:`SWDResult` keyed by the resolution ``min(H, W) // 2**level``.

    Raises:
        ValueError: if the shapes differ, a set is empty, images are smaller
            than 16 px or hold NaNs.
    """
    cfg = config or SWDConfig()
    r = _as_nchw(real, "real")
    f = _as_nchw(fake, "fake")
    if r.shape[1:] != f.shape[1:]:
        raise ValueError(f"real images {r.shape[1:]} and fake images {f.shape[1:]} differ in shape")
    rng = np.random.default_rng(cfg.seed)
    n = min(r.shape[0], f.shape[0])
    if r.shape[0] > n:
        r = r[np.sort(rng.choice(r.shape[0], n, replace=False))]
    if f.shape[0] > n:
        f = f[np.sort(rng.choice(f.shape[0], n, replace=False))]
    resolutions = []
    res = min(r.shape[2:])
    while res >= MIN_RESOLUTION:
        resolutions.append(res)
        res //= 2
    pyr_r = laplacian_pyramid(r, len(resolutions))
    pyr_f = laplacian_pyramid(f, len(resolutions))
    per_level = {}
    for res, lr, lf in zip(resolutions, pyr_r, pyr_f, strict=True):
        dr = _descriptors(lr, cfg.nhood_size, cfg.nhoods_per_image, rng)
        df = _descriptors(lf, cfg.nhood_size, cfg.nhoods_per_image, rng)
        mean_r, sd_r = dr.mean(axis=(0, 2, 3), keepdims=True), dr.std(axis=(0, 2, 3), keepdims=True)
        if cfg.normalisation is DescriptorNormalisation.PER_SET:
            mean_f, sd_f = df.mean(axis=(0, 2, 3), keepdims=True), df.std(axis=(0, 2, 3), keepdims=True)
        else:
            mean_f, sd_f = mean_r, sd_r
        a = _standardise(dr, mean_r, sd_r)
        b = _standardise(df, mean_f, sd_f)
        per_level[res] = 1e3 * sliced_wasserstein(a, b, cfg.dir_repeats, cfg.dirs_per_repeat, rng)
    return SWDResult(per_level=per_level)
