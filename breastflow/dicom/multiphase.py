"""Split a series that holds several dynamic phases into one series per phase.

GE (e.g. VIBRANT MultiPhase) and Philips export every phase of a DCE
acquisition in one series: each slice position then appears once per phase.
Read as one volume that is a duplicate slice; split first, each phase is a
series of its own that classification places in time (``pre``, ``post_k``)
like any other.

A series is split only when its slice positions repeat *exactly* ``k >= 2``
times (every position once per phase) and the frames can be told apart by,
in this order:

1. :attr:`~breastflow.dicom.header.FrameInfo.temporal_position`
   (TemporalPositionIdentifier of classic objects, per-frame
   TemporalPositionIndex of enhanced objects): ``k`` distinct values, each
   holding one frame per position, and no more values than a declared
   NumberOfTemporalPositions;
2. TriggerTime, then acquisition time (AcquisitionDateTime /
   AcquisitionDate+Time, or FrameAcquisitionDateTime of enhanced frames):
   at each position the ``k`` frames have distinct times, and the ``j``-th
   frames of all positions form clusters that do not overlap in time
   (phase ``j`` ends before phase ``j + 1`` starts).

Anything else (uneven repeats, ties, overlapping clusters) is left whole, so
:func:`~breastflow.dicom.volume.read_volume` reports it as ``duplicate-slice``
as before: a split is never guessed.

Each phase is a :class:`~breastflow.dicom.series.SeriesGroup` with the derived,
memory-only series key ``<SeriesInstanceUID>#t<j>`` (``j = 1..k`` in phase
order), so classification, pseudonyms, fingerprints and store names stay
distinct per phase. For enhanced objects one file holds frames of several
phases: the phase then names its frames in ``frame_keys``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from enum import Enum

import numpy as np

from breastflow.dicom.header import ENHANCED_SOP_CLASSES, FrameInfo
from breastflow.dicom.series import SeriesGroup

#: Two frames closer than this along the slice normal (mm) share a slice position
#: (the duplicate-slice threshold of :mod:`breastflow.dicom.volume`).
SAME_POSITION_MM = 0.01


class PhaseKey(str, Enum):
    """What told the phases of a multi-phase series apart."""

    TEMPORAL_POSITION = "temporal-position"
    TRIGGER_TIME = "trigger-time"
    ACQUISITION_TIME = "acquisition-time"


def derived_series_uid(series_uid: str, phase: int) -> str:
    """The memory-only series key of phase ``phase`` (1-based) of a multi-phase series."""
    return f"{series_uid}#t{phase}"


def _position_slots(frames: Sequence[FrameInfo]) -> list[int] | None:
    """Slot index (0..n_positions-1, along the slice normal) of each frame; ``None`` if unplaceable."""
    if any(f.position is None or f.orientation is None for f in frames):
        return None
    orientation = np.asarray(frames[0].orientation, dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    along = np.asarray([f.position for f in frames], dtype=np.float64) @ normal
    order = np.argsort(along, kind="stable")
    slots = [0] * len(frames)
    slot = 0
    for previous, current in zip(order[:-1], order[1:], strict=True):
        slots[int(previous)] = slot
        if along[current] - along[previous] >= SAME_POSITION_MM:
            slot += 1
    slots[int(order[-1])] = slot
    return slots


def _phases_by_identifier(frames: Sequence[FrameInfo], slots: list[int], k: int,
                          declared: int | None) -> list[int] | None:
    """Phase (0..k-1) of each frame from its temporal position, or ``None``."""
    values = [f.temporal_position for f in frames]
    if any(v is None for v in values):
        return None
    distinct = sorted(set(values))  # type: ignore[type-var]
    if len(distinct) != k or (declared is not None and k > declared):
        return None
    if len(set(zip(slots, values, strict=True))) != len(frames):  # one frame per (position, phase)
        return None
    rank = {v: j for j, v in enumerate(distinct)}
    return [rank[v] for v in values]


def _phases_by_time(frames: Sequence[FrameInfo], slots: list[int], k: int,
                    time_of: Callable[[FrameInfo], float | None]) -> list[int] | None:
    """Phase of each frame from the rank of its time among the frames at its position, or ``None``."""
    times = [time_of(f) for f in frames]
    if any(t is None for t in times):
        return None
    at_slot: dict[int, list[int]] = {}
    for i, slot in enumerate(slots):
        at_slot.setdefault(slot, []).append(i)
    phases = [0] * len(frames)
    for members in at_slot.values():
        members.sort(key=lambda i: times[i])  # type: ignore[arg-type,return-value]
        ordered = [times[i] for i in members]
        if any(b <= a for a, b in zip(ordered[:-1], ordered[1:], strict=True)):  # type: ignore[operator]
            return None  # two frames of one position at the same time: not a clean split
        for j, i in enumerate(members):
            phases[i] = j
    bounds = [(min(t for t, p in zip(times, phases, strict=True) if p == j),  # type: ignore[type-var]
               max(t for t, p in zip(times, phases, strict=True) if p == j)) for j in range(k)]  # type: ignore[type-var]
    if any(bounds[j][1] >= bounds[j + 1][0] for j in range(k - 1)):  # type: ignore[operator]
        return None  # clusters overlap in time
    return phases


def _acquisition_seconds(frame: FrameInfo) -> float | None:
    moment = frame.acquisition_datetime
    return None if moment is None else moment.timestamp()


def phase_labels(group: SeriesGroup) -> tuple[list[int], PhaseKey] | None:
    """Phase index (0-based, in time order) of each of ``group.frames``, and what decided it.

    Returns:
        ``None`` when the series is not a clean multi-phase series (see the module docstring).
    """
    if group.is_projection or len({h.sop_class_uid in ENHANCED_SOP_CLASSES for h in group.headers}) > 1:
        return None  # projections never; classic + enhanced mixes are reported by planning
    if any("MOSAIC" in h.image_type and h.mosaic_images is None for h in group.headers):
        return None  # a mosaic that was not un-mosaicked: refused elsewhere
    frames = group.frames
    if len(frames) < 2:
        return None
    slots = _position_slots(frames)
    if slots is None:
        return None
    n_positions = max(slots) + 1
    k, rest = divmod(len(frames), n_positions)
    if k < 2 or rest or set(Counter(slots).values()) != {k}:
        return None
    declared = group.first.n_temporal_positions
    labels = _phases_by_identifier(frames, slots, k, declared)
    if labels is not None:
        return labels, PhaseKey.TEMPORAL_POSITION
    labels = _phases_by_time(frames, slots, k, lambda f: f.trigger_time_ms)
    if labels is not None:
        return labels, PhaseKey.TRIGGER_TIME
    labels = _phases_by_time(frames, slots, k, _acquisition_seconds)
    if labels is not None:
        return labels, PhaseKey.ACQUISITION_TIME
    return None


def split_phases(group: SeriesGroup) -> list[SeriesGroup]:
    """One series per phase of a multi-phase series; ``[group]`` when it is not one.

    Args:
        group: from :func:`breastflow.dicom.series.group_series`.

    Returns:
        The phases in time order, each with series key ``<uid>#t<j>`` and
        ``part`` ``"phase j of k (<key>)"``, or the unchanged group.
    """
    found = phase_labels(group)
    if found is None:
        return [group]
    labels, key = found
    frames = group.frames
    k = max(labels) + 1
    phases = []
    for j in range(k):
        keys = frozenset((f.path, f.frame_index) for f, p in zip(frames, labels, strict=True) if p == j)
        headers = tuple(h for h in group.headers if any((h.path, f.frame_index) in keys for f in h.frames))
        whole = all((h.path, f.frame_index) in keys for h in headers for f in h.frames)
        phases.append(replace(group, series_uid=derived_series_uid(group.series_uid, j + 1), headers=headers,
                              frame_keys=None if whole else keys, part=f"phase {j + 1} of {k} ({key.value})"))
    return phases


def split_multiphase(groups: Iterable[SeriesGroup]) -> list[SeriesGroup]:
    """Every series of ``groups``, multi-phase ones replaced by their phases (order kept).

    Runs over the whole batch before studies are planned one by one, so a
    series whose headers make the split itself fail (malformed timing tags)
    is kept whole rather than stopping the batch: reading it then reports its
    repeated positions as ``duplicate-slice`` for that series alone.
    """
    out: list[SeriesGroup] = []
    for group in groups:
        try:
            out.extend(split_phases(group))
        except Exception:  # noqa: BLE001 - one malformed series never stops the batch
            out.append(group)
    return out
