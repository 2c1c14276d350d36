"""One intensity rule: stored raw values -> ``[-1, 1]`` network inputs, and back for generation.

Stored series keep raw, lossless values; the modality rescale still to apply
is in ``attrs.breastflow`` (``rescale_slope``, ``rescale_intercept``; identity
when ingest applied an integer rescale already). Physical values are
``x = raw * slope + intercept`` (:class:`Rescale`).

**STUDY_UNIT** (default). Every phase of a study is divided by the *same*
per-study unit, so the enhancement between phases survives normalisation
(paper 003 sec. 3.1 min-max normalises each volume separately, which destroys
it). The unit is a robust upper percentile (default the 99.5th) of the
pre-contrast series' physical values inside the body, where "body" is every
voxel above ``body_factor`` times the mean of the sampled voxels (air is
near zero, so the mean lies well below tissue). It is computed from a strided
subsample of at most ``max_slices`` axial slices (:func:`unit_slices`), so no
loader ever reads a whole volume to scale one slice. Then::

    y = 2 * clip(x / unit, 0, clip_max) / clip_max - 1      (default clip_max = 2.0)

i.e. physical 0 -> -1 and ``clip_max * unit`` -> +1; values below 0 or above
``clip_max`` units are clipped (the only lossy step). :meth:`IntensityMap.denormalise`
is the exact inverse inside that range (up to float32 rounding, well under one
raw unit for 16-bit data).

**LEGACY_MINMAX_8BIT** (paper 003's pipeline, for comparison only): each series
is min-max scaled over its whole volume to 0..255, rounded to 8 bit, then mapped
to ``[-1, 1]``. It loses bit depth and the enhancement between phases.

The unit may be computed at ingest and stored in the pre-contrast series'
commit record (``SeriesRecord.intensity_unit`` with its :meth:`UnitConfig.rule_id`);
readers use it when the rule matches and compute it otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Series whose values define a study's intensity unit.
UNIT_SERIES = "pre"
#: Grey levels of the legacy 8-bit pipeline.
LEGACY_LEVELS = 256


class Normalisation(str, Enum):
    """How raw values become ``[-1, 1]`` network inputs."""

    STUDY_UNIT = "study-unit"
    LEGACY_MINMAX_8BIT = "legacy-minmax-8bit"


class UnitConfig(BaseModel):
    """How a study's intensity unit is computed from its pre-contrast series.

    Attributes:
        percentile: upper percentile of the body voxels (physical values).
        body_factor: body = voxels above ``body_factor * mean`` of the sample.
        max_slices: at most this many axial slices are sampled (strided, see :func:`unit_slices`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    percentile: float = Field(default=99.5, gt=0.0, le=100.0)
    body_factor: float = Field(default=1.0, ge=0.0)
    max_slices: int = Field(default=16, ge=1)

    def rule_id(self) -> str:
        """A short, stable name of this rule (stored beside a unit computed at ingest)."""
        return f"unit-v1:p{self.percentile:g}:body{self.body_factor:g}xmean:s{self.max_slices}"


class IntensityConfig(BaseModel):
    """The intensity rule of a dataset (recorded in every run config).

    Attributes:
        normalisation: :class:`Normalisation` (``STUDY_UNIT`` unless comparing with the paper).
        unit: how the study unit is computed (``STUDY_UNIT`` only).
        clip_max: physical values are clipped to ``[0, clip_max * unit]`` before mapping to ``[-1, 1]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    normalisation: Normalisation = Normalisation.STUDY_UNIT
    unit: UnitConfig = UnitConfig()
    clip_max: float = Field(default=2.0, gt=0.0)


@dataclass(frozen=True)
class Rescale:
    """The modality rescale still to apply to stored values: ``x = raw * slope + intercept``."""

    slope: float = 1.0
    intercept: float = 0.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.slope) or self.slope == 0 or not np.isfinite(self.intercept):
            raise ValueError(f"rescale slope {self.slope} / intercept {self.intercept} is not usable "
                             "(slope must be finite and non-zero)")

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, object]) -> Rescale:
        """From a series' ``attrs.breastflow`` (missing keys: identity)."""
        slope, intercept = attrs.get("rescale_slope"), attrs.get("rescale_intercept")
        return cls(slope=1.0 if slope is None else float(slope),  # type: ignore[arg-type]
                   intercept=0.0 if intercept is None else float(intercept))  # type: ignore[arg-type]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Physical values (float64) of stored values of any shape."""
        return np.asarray(raw, dtype=np.float64) * self.slope + self.intercept

    def invert(self, physical: np.ndarray) -> np.ndarray:
        """Stored values (float64, not rounded) of physical values."""
        return (np.asarray(physical, dtype=np.float64) - self.intercept) / self.slope


def unit_slices(z: int, max_slices: int) -> np.ndarray:
    """The axial slices sampled for a study's unit: every ``ceil(z / max_slices)``-th, centred.

    Args:
        z: slices of the pre-contrast series; max_slices: at most this many are returned.

    Returns:
        ``(N,)`` sorted int64 indices in ``[0, z)``, ``N <= max_slices``.

    Raises:
        ValueError: ``z < 1``.
    """
    if z < 1:
        raise ValueError(f"a series needs at least one slice to compute an intensity unit, got {z}")
    stride = -(-z // max_slices)
    return np.arange(stride // 2, z, stride, dtype=np.int64)


def intensity_unit(sample: np.ndarray, rescale: Rescale, config: UnitConfig, where: str = "study") -> float:
    """A study's intensity unit from sampled pre-contrast slices.

    Args:
        sample: ``(N, Y, X)`` raw stored values (e.g. the slices of :func:`unit_slices`).
        rescale: the series' remaining rescale.
        config: percentile and body threshold.
        where: name for error messages (a study pseudonym).

    Returns:
        The ``config.percentile``-th percentile of the body voxels' physical values (> 0).

    Raises:
        ValueError: empty sample, no voxel above the body threshold, or a non-positive unit.
    """
    x = rescale.apply(sample).ravel()
    if x.size == 0:
        raise ValueError(f"{where}: no voxels sampled for the intensity unit")
    body = x[x > config.body_factor * x.mean()]
    if body.size == 0:
        raise ValueError(f"{where}: the pre-contrast series is constant ({x[0]:g}); "
                         "no body region to compute an intensity unit from")
    unit = float(np.percentile(body, config.percentile))
    if not unit > 0:
        raise ValueError(f"{where}: intensity unit {unit:g} is not positive (pre-contrast physical values "
                         "are <= 0 in the body); check the stored rescale slope/intercept")
    return unit


def volume_unit(volume: np.ndarray, rescale: Rescale, config: UnitConfig, where: str = "study") -> float:
    """:func:`intensity_unit` of an in-memory ``(Z, Y, X)`` pre-contrast volume (same slices a reader samples).

    Used at ingest, where the volume is in memory; gives exactly what a loader
    computes from the store.
    """
    return intensity_unit(volume[unit_slices(int(volume.shape[0]), config.max_slices)], rescale, config, where)


@dataclass(frozen=True)
class IntensityMap:
    """Raw stored values of one series <-> ``[-1, 1]`` float32, and back.

    Attributes:
        rescale: the series' remaining rescale.
        low, high: physical values mapped to -1 and +1 (clipped outside).
        levels: grey levels of a quantised map (256 for the legacy 8-bit pipeline), ``None`` otherwise.
    """

    rescale: Rescale
    low: float
    high: float
    levels: int | None = None

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"intensity map needs high > low, got [{self.low:g}, {self.high:g}]")

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """``[-1, 1]`` float32 of raw stored values, any shape (e.g. ``(H, W)``).

        8/16-bit integers (exact in float32) take one fused float32 affine map
        (4x less CPU than float64 on 512^2 slices); other dtypes and the quantised
        legacy map compute in float64.
        """
        raw = np.asarray(raw)
        if self.levels is None and raw.dtype.kind in "ui" and raw.dtype.itemsize <= 2:
            span = self.high - self.low
            y = raw.astype(np.float32)
            y *= np.float32(2.0 * self.rescale.slope / span)
            y += np.float32(2.0 * (self.rescale.intercept - self.low) / span - 1.0)
            return np.clip(y, -1.0, 1.0, out=y)
        t = np.clip((self.rescale.apply(raw) - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.levels is not None:
            t = np.round(t * (self.levels - 1)) / (self.levels - 1)
        return (2.0 * t - 1.0).astype(np.float32)

    def denormalise(self, y: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
        """Raw stored values of ``[-1, 1]`` values (generated images), rounded and clipped to ``dtype``.

        Args:
            y: values in ``[-1, 1]`` (clipped), any shape.
            dtype: the real series' integer dtype.
        """
        t = (np.clip(np.asarray(y, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
        raw = np.round(self.rescale.invert(self.low + t * (self.high - self.low)))
        info = np.iinfo(np.dtype(dtype))
        return np.clip(raw, info.min, info.max).astype(dtype)


def study_unit_map(rescale: Rescale, unit: float, clip_max: float) -> IntensityMap:
    """The ``STUDY_UNIT`` map of one series: physical ``[0, clip_max * unit]`` -> ``[-1, 1]``."""
    return IntensityMap(rescale=rescale, low=0.0, high=clip_max * unit)


def legacy_minmax_map(rescale: Rescale, vmin: float, vmax: float) -> IntensityMap:
    """The ``LEGACY_MINMAX_8BIT`` map: the series' physical ``[min, max]`` -> 0..255 -> ``[-1, 1]``.

    A constant series (``vmax == vmin``) maps to -1.
    """
    return IntensityMap(rescale=rescale, low=vmin, high=vmax if vmax > vmin else vmin + 1.0,
                        levels=LEGACY_LEVELS)


def ingest_unit_fields(series: str, volume: np.ndarray, rescale: Rescale,
                       config: UnitConfig | None = None) -> dict[str, float | str]:
    """Commit-record fields holding the study unit, computed at ingest from the in-memory pre-contrast volume.

    Args:
        series: role of the series being committed (only :data:`UNIT_SERIES` gets a unit).
        volume: its ``(Z, Y, X)`` stored values; rescale: the rescale still to apply.
        config: the rule (default :class:`UnitConfig`; readers use the stored unit only when their rule matches).

    Returns:
        ``{"intensity_unit": ..., "intensity_unit_rule": ...}``, or ``{}`` for other series and
        for volumes without a body region (loaders then report the problem when they need the unit).
    """
    if series != UNIT_SERIES or volume.ndim != 3 or volume.shape[0] < 1:
        return {}
    config = config or UnitConfig()
    try:
        unit = volume_unit(volume, rescale, config)
    except ValueError:
        return {}
    return {"intensity_unit": unit, "intensity_unit_rule": config.rule_id()}
