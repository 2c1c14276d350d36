"""Memorisation check: are synthetic images suspiciously close to training images?

For every synthetic sample the distance to its nearest *training* sample
(distance to closest record, DCR) is compared with the same distance for
held-out real samples, which the generator never saw. A held-out image is as
close to the training set as an honest new sample can be expected to be; a
synthetic image closer than the ``quantile`` (default 5 %) of the held-out
DCRs is flagged as suspiciously close. With a generator that does not copy,
about ``quantile`` of the synthetic set is flagged; much more points to
memorisation. Works in any space: image features or flattened pixels (run it
once per space). The closest synthetic/training pairs are saved as a figure
for a human to look at.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastflow.metrics import names
from breastflow.metrics.knn import (
    DEFAULT_CHUNK_SIZE,
    as_feature_matrix,
    nearest_neighbour,
)

DEFAULT_QUANTILE = 0.05


class DistanceSpace(str, enum.Enum):
    """Where the nearest-neighbour distances were measured."""

    FEATURES = "features"
    PIXELS = "pixels"


@dataclass(frozen=True)
class PrivacyResult:
    """Nearest-training-sample distances of synthetic and held-out samples.

    Attributes:
        space: the space the distances live in.
        synthetic_dcr: ``(M,)`` distance of each synthetic sample to its nearest training sample.
        synthetic_nearest: ``(M,)`` index of that training sample.
        holdout_dcr: ``(H,)`` the same for each held-out real sample.
        quantile: quantile of ``holdout_dcr`` used as threshold.
        threshold: the threshold distance.
        close: ``(M,)`` bool, synthetic samples with ``dcr < threshold``.
    """

    space: DistanceSpace
    synthetic_dcr: np.ndarray
    synthetic_nearest: np.ndarray
    holdout_dcr: np.ndarray
    quantile: float
    threshold: float
    close: np.ndarray

    @property
    def close_share(self) -> float:
        """Share of synthetic samples closer than the threshold."""
        return float(self.close.mean())

    def closest_pairs(self, n: int) -> list[tuple[int, int, float]]:
        """The ``n`` closest ``(synthetic index, training index, distance)`` pairs, closest first."""
        order = np.argsort(self.synthetic_dcr, kind="stable")[:n]
        return [(int(i), int(self.synthetic_nearest[i]), float(self.synthetic_dcr[i])) for i in order]

    def to_dict(self) -> dict[str, float]:
        """Flat dict; keys carry the space, e.g. ``privacy_close_share_pixels``."""
        s = self.space.value
        return {
            f"{names.PRIVACY_CLOSE_SHARE}_{s}": self.close_share,
            f"privacy_threshold_{s}": self.threshold,
            f"privacy_median_dcr_synthetic_{s}": float(np.median(self.synthetic_dcr)),
            f"privacy_median_dcr_holdout_{s}": float(np.median(self.holdout_dcr)),
        }


def memorisation_distances(
    train: np.ndarray,
    holdout: np.ndarray,
    synthetic: np.ndarray,
    space: DistanceSpace = DistanceSpace.FEATURES,
    quantile: float = DEFAULT_QUANTILE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> PrivacyResult:
    """Distances to the closest training record, synthetic vs held-out.

    Args:
        train: ``(N, D)`` features (or ``(N, ...)`` images, flattened) the generator was trained on.
        holdout: ``(H, D)`` real samples not used in training.
        synthetic: ``(M, D)`` generated samples.
        space: label of the space, recorded in the result keys.
        quantile: the held-out DCR quantile below which a synthetic sample
            counts as suspiciously close, in ``(0, 1)``.

    Raises:
        ValueError: if a set is empty or holds NaNs, the dimensions differ,
            or ``quantile`` is outside ``(0, 1)``.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    tr = as_feature_matrix(train, "training")
    ho = as_feature_matrix(holdout, "held-out")
    sy = as_feature_matrix(synthetic, "synthetic")
    for name, arr in (("held-out", ho), ("synthetic", sy)):
        if arr.shape[1] != tr.shape[1]:
            raise ValueError(f"{name} dimension {arr.shape[1]} != training dimension {tr.shape[1]}")
    syn_dcr, syn_idx = nearest_neighbour(sy, tr, chunk_size)
    ho_dcr, _ = nearest_neighbour(ho, tr, chunk_size)
    threshold = float(np.quantile(ho_dcr, quantile))
    return PrivacyResult(
        space=DistanceSpace(space),
        synthetic_dcr=syn_dcr,
        synthetic_nearest=syn_idx,
        holdout_dcr=ho_dcr,
        quantile=quantile,
        threshold=threshold,
        close=syn_dcr < threshold,
    )


def plot_closest_pairs(
    result: PrivacyResult,
    synthetic_images: Sequence[np.ndarray] | np.ndarray,
    train_images: Sequence[np.ndarray] | np.ndarray,
    path: str | Path,
    n_pairs: int = 8,
) -> Path:
    """Save the ``n_pairs`` closest synthetic/training pairs as a two-row PNG.

    Args:
        result: from :func:`memorisation_distances` on these sets (indices must match).
        synthetic_images: ``M`` images ``(H, W)``.
        train_images: ``N`` images ``(H, W)``.
        path: output PNG.

    Returns:
        The written path.
    """
    from matplotlib.figure import Figure

    pairs = result.closest_pairs(n_pairs)
    if not pairs:
        raise ValueError("no synthetic samples to plot")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(2.0 * len(pairs), 4.4))
    axes = np.asarray(fig.subplots(2, len(pairs), squeeze=False))
    for col, (i, j, d) in enumerate(pairs):
        flag = " (close)" if result.close[i] else ""
        axes[0, col].imshow(np.asarray(synthetic_images[i]), cmap="gray")
        axes[0, col].set_title(f"syn {i}\nd={d:.3g}{flag}", fontsize=8)
        axes[1, col].imshow(np.asarray(train_images[j]), cmap="gray")
        axes[1, col].set_title(f"train {j}", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(f"closest synthetic/training pairs ({result.space.value}); threshold {result.threshold:.3g}", fontsize=9)
    fig.savefig(path, dpi=100)
    return path
