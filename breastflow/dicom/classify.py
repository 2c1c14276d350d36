"""Classify the series of a study: pre-contrast, post-contrast phase k, T2, mammography view.

Rules (in order; the first that applies decides; see docs/ingest_reading.md):

1. Mammography (modality ``MG`` or a mammography SOP class): one image per
   series with ViewPosition CC or MLO and ImageLaterality L or R -> ``MAMMO``;
   anything else -> ``UNKNOWN`` with the reason.
2. Non-MR modalities -> ``UNKNOWN`` ("not part of the breast protocol").
3. MR derived images (ImageType DERIVED, subtraction/MIP descriptions) and
   localizers -> ``UNKNOWN``.
4. MR T2-weighted: description hint (T2, STIR, TIRM) or long TE and TR
   (TE >= 60 ms and TR >= 1000 ms) -> ``T2``.
5. MR dynamic candidates: a dynamic/contrast description hint, a
   ContrastBolusAgent, or a temporal position. Others -> ``UNKNOWN``.
6. The pre-contrast series is the latest candidate whose description says
   "pre" (and that has no contrast agent); failing a hint, the earliest
   candidate without contrast agent and without a post-contrast hint.
   No pre in an MR study -> :class:`~breastflow.dicom.errors.NoPreContrast`.
7. Candidates acquired after the pre with the same matrix, frame count and
   slice normal are ``POST`` phases ``k = 1, 2, ...`` in order of acquisition
   time, with ``seconds_after_pre``; the rest are ``UNKNOWN`` with the reason.

Timing decides the phase order; descriptions are hints only, so vendors'
naming (GE "ax dyn 1st pass", Siemens "t1_fl3d_tra_dynVIEWS_spair_pre") does
not need to be enumerated. Reasons never quote header text (it may hold PHI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from breastflow.deid.dates import seconds_after
from breastflow.dicom.errors import NoPreContrast
from breastflow.dicom.series import SeriesGroup, StudyGroup


class SeriesRole(str, Enum):
    """What a series is in the breast protocol."""

    PRE = "pre"
    POST = "post"
    T2 = "t2"
    MAMMO = "mammo"
    UNKNOWN = "unknown"


class MammoView(str, Enum):
    """Standard screening mammography views."""

    CC = "CC"
    MLO = "MLO"


class Laterality(str, Enum):
    """Which breast."""

    LEFT = "L"
    RIGHT = "R"


_DERIVED = re.compile(r"(?<![a-z])(subtract[a-z]*|sub|mip|mpr|diff[a-z]*)(?![a-z])", re.IGNORECASE)
_LOCALIZER = re.compile(r"\bloc|scout|survey|3[ -]?pl(ane)?\b|calibration|\basset\b|\bcal\b", re.IGNORECASE)
_T2 = re.compile(r"t2|stir|tirm", re.IGNORECASE)
_PRE = re.compile(r"(\bpre\b|_pre\b|pre[-_ ]?contrast|non[-_ ]?con|\bw/?o\b|without|\bph(ase)?[-_ ]?0\b|nativ)",
                  re.IGNORECASE)
_POST = re.compile(r"(post|pass\b|\b\d+(st|nd|rd|th)\b|\bph(ase)?[-_ ]?[1-9]|\+c\b|\bgad|\bc\+)", re.IGNORECASE)
_DYNAMIC = re.compile(r"(dyn|dce|vibrant|thrive|fl3d|views|twist|contrast|multi[-_ ]?phase)", re.IGNORECASE)
T2_MIN_ECHO_MS = 60.0
T2_MIN_REPETITION_MS = 1000.0


@dataclass(frozen=True)
class ClassifiedSeries:
    """A series with its role in the protocol.

    Attributes:
        series: the grouped series.
        role: its :class:`SeriesRole`.
        phase_index: 0 for ``PRE``, ``k >= 1`` for ``POST``, else ``None``.
        seconds_after_pre: acquisition start minus the pre's (``PRE``: 0.0;
            ``POST``: > 0; others: offset if both times are known, else ``None``).
        view, laterality: for ``MAMMO`` series.
        reason: why this role was given (always set; PHI-free).
    """

    series: SeriesGroup
    role: SeriesRole
    reason: str
    phase_index: int | None = None
    seconds_after_pre: float | None = None
    view: MammoView | None = None
    laterality: Laterality | None = None

    @property
    def name(self) -> str:
        """Stable, PHI-free array name: ``pre``, ``post_1``, ``t2``, ``mg_L_CC``, ``unknown_<n>``."""
        if self.role is SeriesRole.PRE:
            return "pre"
        if self.role is SeriesRole.POST:
            return f"post_{self.phase_index}"
        if self.role is SeriesRole.MAMMO:
            return f"mg_{self.laterality.value}_{self.view.value}"  # type: ignore[union-attr]
        if self.role is SeriesRole.T2:
            return "t2"
        number = self.series.series_number
        return f"unknown_{'x' if number is None else number}"


def _normal(series: SeriesGroup) -> np.ndarray | None:
    orientation = series.frames[0].orientation
    if orientation is None:
        return None
    return np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))


def _classify_mammo(series: SeriesGroup) -> ClassifiedSeries:
    if len(series.headers) != 1 or series.n_frames != 1:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"mammography series holds {series.n_frames} images; expected one view per series")
    header = series.first
    try:
        view = MammoView(header.view_position)
    except ValueError:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"mammography view {header.view_position or 'missing'!r} is not CC or MLO")
    try:
        side = Laterality(header.laterality)
    except ValueError:
        return ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                f"image laterality {header.laterality or 'missing'!r} is not L or R")
    return ClassifiedSeries(series, SeriesRole.MAMMO, "mammography view and laterality from the header",
                            view=view, laterality=side)


def _mr_exclusion(series: SeriesGroup) -> str | None:
    """Reason an MR series is not a DCE/T2 candidate, or ``None``."""
    header = series.first
    if "LOCALIZER" in header.image_type or _LOCALIZER.search(series.series_description):
        return "localizer/calibration series"
    if "DERIVED" in header.image_type or _DERIVED.search(series.series_description):
        return "derived image (subtraction, MIP or reformat); only acquired phases are ingested"
    return None


def _is_t2(series: SeriesGroup) -> bool:
    header = series.first
    if _T2.search(series.series_description):
        return True
    echo, repetition = header.echo_time_ms, header.repetition_time_ms
    return (echo is not None and repetition is not None and echo >= T2_MIN_ECHO_MS
            and repetition >= T2_MIN_REPETITION_MS)


def _is_dynamic(series: SeriesGroup) -> bool:
    description = series.series_description
    return bool(_DYNAMIC.search(description) or _PRE.search(description) or _POST.search(description)
                or series.contrast_agent
                or any(f.temporal_position is not None for f in series.frames[:1]))


def _choose_pre(candidates: list[SeriesGroup]) -> tuple[SeriesGroup | None, str]:
    hinted = [s for s in candidates if _PRE.search(s.series_description) and not s.contrast_agent]
    if hinted:
        return max(hinted, key=lambda s: s.acquisition_start), "description hint 'pre-contrast', no contrast agent"  # type: ignore[arg-type,return-value]
    plain = [s for s in candidates if not s.contrast_agent and not _POST.search(s.series_description)]
    if plain:
        return (min(plain, key=lambda s: s.acquisition_start),  # type: ignore[arg-type,return-value]
                "earliest dynamic series without contrast agent or post-contrast hint")
    return None, ""


def _same_grid(a: SeriesGroup, b: SeriesGroup) -> bool:
    if (a.first.rows, a.first.columns, a.n_frames) != (b.first.rows, b.first.columns, b.n_frames):
        return False
    na, nb = _normal(a), _normal(b)
    return na is not None and nb is not None and float(abs(np.dot(na, nb))) > 0.999


def classify_study(study: StudyGroup) -> list[ClassifiedSeries]:
    """Classify every series of a study (order of ``study.series`` is kept).

    Args:
        study: from :func:`breastflow.dicom.series.group_studies`.

    Returns:
        One :class:`ClassifiedSeries` per series; unrecognised series are
        ``UNKNOWN`` with a reason, never guessed.

    Raises:
        NoPreContrast: an MR study in which no series qualifies as pre-contrast.
    """
    decided: dict[str, ClassifiedSeries] = {}
    candidates: list[SeriesGroup] = []
    mr_series = 0
    for series in study.series:
        key = series.series_uid
        if series.modality == "MG" or "Mammography" in _sop_name(series.sop_class_uid):
            decided[key] = _classify_mammo(series)
            continue
        if series.modality != "MR":
            decided[key] = ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                            f"modality {series.modality or '?'} is not part of the breast protocol")
            continue
        mr_series += 1
        exclusion = _mr_exclusion(series)
        if exclusion:
            decided[key] = ClassifiedSeries(series, SeriesRole.UNKNOWN, exclusion)
        elif _is_t2(series):
            decided[key] = ClassifiedSeries(series, SeriesRole.T2, "T2 hint in description or long TE/TR")
        elif not _is_dynamic(series):
            decided[key] = ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                            "MR series without dynamic/contrast hint or contrast agent")
        elif series.acquisition_start is None:
            decided[key] = ClassifiedSeries(series, SeriesRole.UNKNOWN,
                                            "dynamic series without acquisition time; cannot place it in time")
        else:
            candidates.append(series)
    if mr_series:
        pre, why = _choose_pre(candidates)
        if pre is None:
            raise NoPreContrast(
                f"no pre-contrast series among {mr_series} MR series ({len(candidates)} dynamic "
                f"candidates, all with contrast agent or post-contrast hints)",
                f"study with {len(study.series)} series, first {study.series[0].locator}",
            )
        _assign_phases(pre, why, candidates, decided)
        reference = pre.acquisition_start
        for key, item in decided.items():
            if item.seconds_after_pre is None and item.series.acquisition_start is not None:
                decided[key] = replace(item, seconds_after_pre=seconds_after(item.series.acquisition_start,
                                                                             reference))
    return [decided[s.series_uid] for s in study.series]


def _assign_phases(pre: SeriesGroup, why: str, candidates: list[SeriesGroup],
                   decided: dict[str, ClassifiedSeries]) -> None:
    reference = pre.acquisition_start
    decided[pre.series_uid] = ClassifiedSeries(pre, SeriesRole.PRE, why, phase_index=0, seconds_after_pre=0.0)
    posts = []
    for series in candidates:
        if series is pre:
            continue
        offset = seconds_after(series.acquisition_start, reference)
        if offset is None or offset <= 0:
            decided[series.series_uid] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "dynamic series acquired before or with the chosen pre-contrast series",
                seconds_after_pre=offset)
        elif _PRE.search(series.series_description) and not series.contrast_agent:
            decided[series.series_uid] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "pre-contrast hint on a series acquired after the chosen pre",
                seconds_after_pre=offset)
        elif not _same_grid(series, pre):
            decided[series.series_uid] = ClassifiedSeries(
                series, SeriesRole.UNKNOWN, "matrix, slice count or orientation differs from the pre-contrast series",
                seconds_after_pre=offset)
        else:
            posts.append((offset, series))
    posts.sort(key=lambda item: item[0])
    for k, (offset, series) in enumerate(posts, start=1):
        decided[series.series_uid] = ClassifiedSeries(
            series, SeriesRole.POST, "acquired after the pre-contrast series on the same grid",
            phase_index=k, seconds_after_pre=offset)


def _sop_name(sop_class_uid: str) -> str:
    from pydicom.uid import UID

    return UID(sop_class_uid).name
