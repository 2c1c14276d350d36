"""First five statistical moments of per-image pixel distributions (MammoGAN, Fig. 2).

For every image the pixel values (optionally inside a mask) are summarised by
mean, standard deviation (population, ``ddof=0``), skewness ``E[z^3]``,
kurtosis ``E[z^4]`` (Pearson, not excess: 3 for a Gaussian) and the 5th
standardised moment ``E[z^5]``, with ``z = (x - mean) / sd``. Real and
synthetic sets are compared moment by moment with the 1-D Wasserstein
distance between their per-image moment distributions, divided by the real
set's spread of that moment, so the five numbers are on one scale;
``moments_w1`` is their mean. The moments plot overlays the per-moment
histograms, real in red and synthetic in blue as in MammoGAN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import wasserstein_distance

from breastflow.metrics import names

MOMENT_NAMES: tuple[str, ...] = ("mean", "sd", "skewness", "kurtosis", "moment5")


def moment_name(moment: str) -> str:
    """Flat-dict key of the normalised W1 distance for one moment."""
    return f"{names.MOMENTS_W1}_{moment}"


def image_moments(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The five moments of one image's pixel values.

    Args:
        image: ``(H, W)`` or any shape; all values are pooled.
        mask: boolean, same shape; only ``True`` pixels count.

    Returns:
        ``(5,)`` float64: mean, sd, skewness, kurtosis, 5th standardised
        moment. For a constant image the standardised moments are 0.

    Raises:
        ValueError: if no pixel is selected or a value is NaN / infinite.
    """
    x = np.asarray(image, dtype=np.float64)
    if mask is not None:
        if np.shape(mask) != x.shape:
            raise ValueError(f"mask shape {np.shape(mask)} != image shape {x.shape}")
        x = x[np.asarray(mask, dtype=bool)]
    x = x.ravel()
    if x.size == 0:
        raise ValueError("no pixels selected for the moments")
    if not np.isfinite(x).all():
        raise ValueError("image has NaN or infinite pixel values")
    mean = x.mean()
    sd = x.std()
    if sd == 0:
        return np.array([mean, 0.0, 0.0, 0.0, 0.0])
    z = (x - mean) / sd
    z2 = z * z
    return np.array([mean, sd, (z2 * z).mean(), (z2 * z2).mean(), (z2 * z2 * z).mean()])


def set_moments(images: Sequence[np.ndarray] | np.ndarray, name: str = "images") -> np.ndarray:
    """Per-image moments of a set.

    Args:
        images: ``(N, H, W)`` array or a sequence of arrays of any shapes.
        name: set name for error messages.

    Returns:
        ``(N, 5)`` float64.

    Raises:
        ValueError: naming the image index when an image is empty or not finite.
    """
    if len(images) == 0:
        raise ValueError(f"{name} set is empty")
    rows = []
    for i, img in enumerate(images):
        try:
            rows.append(image_moments(img))
        except ValueError as err:
            raise ValueError(f"{name} image {i}: {err}") from err
    return np.stack(rows)


@dataclass(frozen=True)
class MomentsComparison:
    """Per-image moments of both sets and their normalised W1 distances.

    Attributes:
        real: ``(N, 5)`` moments of the real images.
        fake: ``(M, 5)`` moments of the synthetic images.
        distances: moment name -> W1(real, fake) / sd of that moment over the
            real set (plain W1 when that sd is 0).
    """

    real: np.ndarray
    fake: np.ndarray
    distances: dict[str, float]

    def to_dict(self) -> dict[str, float]:
        """``moments_w1`` (mean over the five), plus one key per moment and the set means."""
        out: dict[str, float] = {names.MOMENTS_W1: float(np.mean(list(self.distances.values())))}
        for i, m in enumerate(MOMENT_NAMES):
            out[moment_name(m)] = self.distances[m]
            out[f"moment_{m}_real"] = float(self.real[:, i].mean())
            out[f"moment_{m}_fake"] = float(self.fake[:, i].mean())
        return out


def compare_moments(real_images: Sequence[np.ndarray] | np.ndarray, fake_images: Sequence[np.ndarray] | np.ndarray) -> MomentsComparison:
    """Moments of both sets and the per-moment normalised W1 distances.

    Args:
        real_images: ``(N, H, W)`` or a sequence of images.
        fake_images: ``(M, H, W)`` or a sequence of images.

    Raises:
        ValueError: if a set is empty or an image is not finite.
    """
    real = set_moments(real_images, "real")
    fake = set_moments(fake_images, "fake")
    distances = {}
    for i, m in enumerate(MOMENT_NAMES):
        w1 = wasserstein_distance(real[:, i], fake[:, i])
        spread = real[:, i].std()
        distances[m] = float(w1 / spread) if spread > 0 else float(w1)
    return MomentsComparison(real=real, fake=fake, distances=distances)


def plot_moments(comparison: MomentsComparison, path: str | Path, bins: int = 30) -> Path:
    """Write the moments plot: one histogram panel per moment, real red, synthetic blue.

    Args:
        comparison: result of :func:`compare_moments`.
        path: output PNG path; parent folders are created.

    Returns:
        The written path.
    """
    from matplotlib.figure import Figure  # Agg canvas, no pyplot global state

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(3.2 * len(MOMENT_NAMES), 3.0))
    axes = fig.subplots(1, len(MOMENT_NAMES))
    for i, (ax, m) in enumerate(zip(axes, MOMENT_NAMES, strict=True)):
        both = np.concatenate([comparison.real[:, i], comparison.fake[:, i]])
        lo, hi = float(both.min()), float(both.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        ax.hist(comparison.real[:, i], bins=edges, color="red", alpha=0.5, density=True, label="real")
        ax.hist(comparison.fake[:, i], bins=edges, color="blue", alpha=0.5, density=True, label="synthetic")
        ax.set_title(f"{m} (W1/sd={comparison.distances[m]:.3g})", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
