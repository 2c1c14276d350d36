"""The intensity range R of an evaluation: where it comes from and what it clips.

R is never taken from the files' container type (a 12-bit MRI saved as a
16-bit PNG would be scored against 65535, inflating SSIM and PSNR and moving
FID). It is either

* ``--data-range`` (:attr:`EvaluationConfig.data_range`), source ``"--data-range"``, or
* the real set's observed range, source ``"real set"``: ``R = max - min(min, 0)``
  over every pixel of the real set, i.e. its maximum for non-negative images
  (the usual case) and its full span when it holds negative values.

Metrics that window intensities to ``[0, R]`` (feature extractors under an
``x / R`` protocol such as ``standard``, LPIPS) clip values outside it. The
share of pixels outside ``[0, R]`` is measured per set and recorded. When a
windowing metric is requested, a non-zero share is a warning (a note, printed by
the CLI, and a :class:`UserWarning`), and a share above
:attr:`EvaluationConfig.max_clipped_share` (default 1 %) is an
:class:`~breastflow.data.image_sets.InputError` unless
:attr:`EvaluationConfig.allow_clipping` (``--allow-clipping``) is set. Metrics
that do not clip (MSE, MAE, PSNR, SSIM, MS-SSIM, pixel-space metrics) only
record the share.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from breastflow.data.image_sets import ImageSet, InputError
from breastflow.evaluate.config import EvaluationConfig

#: ``DataRange.source`` values.
FROM_OPTION = "--data-range"
FROM_REAL_SET = "real set"


@dataclass(frozen=True)
class DataRange:
    """The resolved intensity range and its provenance.

    Attributes:
        value: R, or ``None`` when no metric needs one and the real set is all zero.
        source: :data:`FROM_OPTION` or :data:`FROM_REAL_SET`.
        real_min, real_max: observed minimum and maximum of the real set.
        clipped_share: set name (``"real"``, ``"fake"``, ``"train"``, ``"holdout"``) ->
            share of its pixels outside ``[0, value]``.
        windowing_metrics: the requested metrics that clip to ``[0, value]``.
    """

    value: float | None
    source: str
    real_min: float
    real_max: float
    clipped_share: dict[str, float] = field(default_factory=dict)
    windowing_metrics: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for notes and the CLI: value, source and the real set's observed range."""
        observed = f"real set observed {self.real_min:.6g}..{self.real_max:.6g}"
        if self.value is None:
            return f"data range: none ({observed})"
        return f"data range R = {self.value:.6g} from {self.source} ({observed})"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"value": self.value, "source": self.source, "real_min": self.real_min, "real_max": self.real_max,
                "clipped_share": dict(self.clipped_share), "windowing_metrics": list(self.windowing_metrics)}


def observed_range(images: ImageSet) -> tuple[float, float]:
    """Minimum and maximum over every pixel of ``images``."""
    return (float(min(np.min(img) for img in images.images)), float(max(np.max(img) for img in images.images)))


def clipped_share(images: ImageSet, value: float) -> float:
    """Share of the pixels of ``images`` outside ``[0, value]``."""
    outside = sum(int(np.count_nonzero((img < 0) | (img > value))) for img in images.images)
    return outside / sum(int(img.size) for img in images.images)


def resolve_data_range(real: ImageSet, config: EvaluationConfig, needed: bool) -> DataRange:
    """R from ``config.data_range`` or the real set's observed range (see the module docstring).

    Args:
        real: the real set.
        config: the evaluation's configuration.
        needed: whether a requested metric needs R.

    Raises:
        InputError: an all-zero real set without ``--data-range`` when R is needed.
    """
    lo, hi = observed_range(real)
    if config.data_range is not None:
        return DataRange(float(config.data_range), FROM_OPTION, lo, hi)
    value = hi - min(lo, 0.0)
    if not value > 0:
        if needed:
            raise InputError(f"the real set {real.source} is all zero: its range cannot serve as data range; "
                             "pass --data-range")
        return DataRange(None, FROM_REAL_SET, lo, hi)
    return DataRange(value, FROM_REAL_SET, lo, hi)


def check_clipping(data_range: DataRange, sets: Mapping[str, ImageSet], windowing_metrics: tuple[str, ...],
                   config: EvaluationConfig, notes: list[str]) -> DataRange:
    """Measure the share of pixels outside ``[0, R]`` per set; warn or refuse when windowing metrics clip them.

    Args:
        data_range: the resolved range.
        sets: set name -> images.
        windowing_metrics: the requested metrics that clip to ``[0, R]``.
        config: ``max_clipped_share`` and ``allow_clipping``.
        notes: receives the range line and one warning line per clipped set.

    Returns:
        ``data_range`` with :attr:`DataRange.clipped_share` and :attr:`DataRange.windowing_metrics` filled in.

    Raises:
        InputError: a set's share exceeds ``config.max_clipped_share`` while
            windowing metrics are requested and ``config.allow_clipping`` is off.
    """
    if data_range.value is None:
        notes.append(data_range.describe())
        return data_range
    shares = {name: clipped_share(images, data_range.value) for name, images in sets.items()}
    resolved = DataRange(data_range.value, data_range.source, data_range.real_min, data_range.real_max,
                         shares, tuple(windowing_metrics))
    notes.append(resolved.describe())
    if not windowing_metrics:
        return resolved
    for name, share in shares.items():
        if share == 0:
            continue
        message = (f"WARNING: {share:.2%} of the {name} set's pixels ({sets[name].source}) lie outside "
                   f"[0, {data_range.value:.6g}] and are clipped by {', '.join(windowing_metrics)}")
        if share > config.max_clipped_share and not config.allow_clipping:
            raise InputError(f"{message}; more than the {config.max_clipped_share:.2%} allowed. Pass a --data-range "
                             "that covers the data, or --allow-clipping to score the clipped images anyway")
        notes.append(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    return resolved
