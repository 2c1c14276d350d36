"""Group probed headers into series and studies (by UID, never by file name).

A :class:`SeriesGroup` is every object sharing one SeriesInstanceUID (single-
frame slices, or one or more enhanced multi-frame objects); a
:class:`StudyGroup` is every series sharing one StudyInstanceUID. Both carry the
raw patient ID and UIDs in memory for pseudonymisation only (PHI: never
write them; use :mod:`breastflow.deid`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from breastflow.dicom.header import (
    ENHANCED_SOP_CLASSES,
    PROJECTION_SOP_CLASSES,
    FrameInfo,
    InstanceHeader,
)


@dataclass(frozen=True)
class SeriesGroup:
    """All probed objects of one series, ordered by (instance number, path).

    Attributes:
        study_uid, series_uid: raw UIDs (PHI-like; memory only).
        patient_id: raw PatientID (PHI; only for pseudonymisation).
        modality: Modality of the first object (e.g. ``"MR"``, ``"MG"``).
        sop_class_uid: SOP class of the first object.
        series_number: SeriesNumber (may be ``None``).
        series_description: free-text hint for classification (never stored).
        headers: one :class:`InstanceHeader` per file.
        frame_keys: ``(path, frame index)`` of the frames that belong to this
            series when it holds only part of its files' frames (one phase of a
            multi-phase enhanced object, see :mod:`breastflow.dicom.multiphase`);
            ``None``: every frame of every file.
        part: which part of the source series this is (e.g. ``"phase 2 of 5"``;
            empty for a whole series); shown in :attr:`locator`.
    """

    study_uid: str
    series_uid: str
    patient_id: str
    modality: str
    sop_class_uid: str
    series_number: int | None
    series_description: str
    headers: tuple[InstanceHeader, ...]
    frame_keys: frozenset[tuple[str, int]] | None = None
    part: str = ""

    @property
    def files(self) -> tuple[str, ...]:
        """Paths/URLs of the series' files."""
        return tuple(h.path for h in self.headers)

    @property
    def frames(self) -> tuple[FrameInfo, ...]:
        """Every 2D frame of the series, in file order."""
        if self.frame_keys is not None:
            return tuple(f for h in self.headers for f in h.frames if (f.path, f.frame_index) in self.frame_keys)
        return tuple(f for h in self.headers for f in h.frames)

    @property
    def n_frames(self) -> int:
        """Total number of 2D frames."""
        if self.frame_keys is not None:
            return len(self.frame_keys)
        return sum(h.n_frames for h in self.headers)

    @property
    def first(self) -> InstanceHeader:
        """The first object's header (vendor, sequence parameters ...)."""
        return self.headers[0]

    @property
    def is_enhanced(self) -> bool:
        """Whether the series is made of enhanced multi-frame objects."""
        return self.sop_class_uid in ENHANCED_SOP_CLASSES

    @property
    def is_projection(self) -> bool:
        """Whether the series holds 2D projection X-ray images (mammography, DX, CR)."""
        return self.sop_class_uid in PROJECTION_SOP_CLASSES

    @property
    def acquisition_start(self) -> dt.datetime | None:
        """Earliest frame acquisition time of the series (PHI; memory only)."""
        if self.frame_keys is not None:
            times = [f.acquisition_datetime for f in self.frames if f.acquisition_datetime]
        else:
            times = [h.acquisition_datetime for h in self.headers if h.acquisition_datetime]
        return min(times) if times else None

    @property
    def contrast_agent(self) -> str:
        """ContrastBolusAgent of any object of the series (empty if none)."""
        return next((h.contrast_agent for h in self.headers if h.contrast_agent), "")

    @property
    def locator(self) -> str:
        """PHI-free description for messages: series number, file count, first file."""
        number = "?" if self.series_number is None else str(self.series_number)
        part = f" {self.part}" if self.part else ""
        return f"series {number}{part} ({len(self.headers)} files, first {self.headers[0].path})"

    @property
    def source_keys(self) -> list[str]:
        """What identifies this series' source content (for fingerprints): the SOP
        Instance UIDs, and for a frame subset also the frame indices it takes."""
        keys = [h.sop_instance_uid for h in self.headers]
        if self.frame_keys is not None:
            index = {h.path: h.sop_instance_uid for h in self.headers}
            keys += sorted(f"{index[p]}#{i}" for p, i in self.frame_keys)
        return keys


@dataclass(frozen=True)
class StudyGroup:
    """All series of one study, ordered by (series number, acquisition start).

    Attributes:
        study_uid: raw StudyInstanceUID (memory only).
        patient_id: raw PatientID of the study (PHI; only for pseudonymisation).
        series: its series.
    """

    study_uid: str
    patient_id: str
    series: tuple[SeriesGroup, ...]

    @property
    def modalities(self) -> frozenset[str]:
        """Modalities present in the study."""
        return frozenset(s.modality for s in self.series)


def _instance_key(header: InstanceHeader) -> tuple[int, str]:
    return (header.instance_number if header.instance_number is not None else 1 << 30, header.path)


def group_series(headers: Iterable[InstanceHeader]) -> list[SeriesGroup]:
    """Group headers by (StudyInstanceUID, SeriesInstanceUID).

    The same SOP instance found twice (e.g. copied into two folders) is kept
    once (the first path in sorted order), so copies never become duplicate slices.
    Whether the copies really hold the same pixels is not checked here (headers
    only): planning settles that first with
    :func:`breastflow.dicom.duplicates.resolve_duplicates`, which rejects every
    copy of an instance whose pixel data differs.

    Args:
        headers: from :func:`breastflow.dicom.discover.probe_headers`.

    Returns:
        Series sorted by (study UID, series number, series UID).
    """
    by_series: dict[tuple[str, str], dict[str, InstanceHeader]] = defaultdict(dict)
    for header in sorted(headers, key=lambda h: h.path):
        instances = by_series[(header.study_uid, header.series_uid)]
        instances.setdefault(header.sop_instance_uid or header.path, header)
    groups = []
    for (study_uid, series_uid), instances in by_series.items():
        ordered = tuple(sorted(instances.values(), key=_instance_key))
        first = ordered[0]
        groups.append(SeriesGroup(
            study_uid=study_uid,
            series_uid=series_uid,
            patient_id=first.patient_id,
            modality=first.modality,
            sop_class_uid=first.sop_class_uid,
            series_number=first.series_number,
            series_description=first.series_description,
            headers=ordered,
        ))
    groups.sort(key=lambda g: (g.study_uid, g.series_number if g.series_number is not None else 1 << 30,
                               g.series_uid))
    return groups


def group_studies(series: Iterable[SeriesGroup]) -> list[StudyGroup]:
    """Group series by StudyInstanceUID.

    Returns:
        Studies sorted by study UID; series inside by (series number, start time).
    """
    by_study: dict[str, list[SeriesGroup]] = defaultdict(list)
    for group in series:
        by_study[group.study_uid].append(group)
    studies = []
    for study_uid, members in sorted(by_study.items()):
        members.sort(key=lambda g: (g.series_number if g.series_number is not None else 1 << 30,
                                    g.acquisition_start or dt.datetime.max, g.series_uid))
        studies.append(StudyGroup(study_uid=study_uid, patient_id=members[0].patient_id,
                                  series=tuple(members)))
    return studies
