"""Commit markers: a series is visible in the store iff its marker exists.

A marker is a small JSON object holding the series' catalog record. It is
written last, after the data has been written and verified, in one atomic
write (see :func:`breastflow.store.fs.atomic_write_bytes`). The catalog is a
projection of all markers, so rebuilding it is always safe.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from breastflow.store import layout
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes

Marker = TypeVar("Marker", bound=BaseModel)


class SeriesRecord(BaseModel):
    """The PHI-free catalog record of one committed series.

    Attributes:
        study: study pseudonym; patient: patient pseudonym; series: role name
            (``pre``, ``post_1``, ``t2``, ...); source_series: pseudonym of the
            source SeriesInstanceUID (provenance).
        modality, vendor, model: from the DICOM headers (PHI-free).
        field_strength_t: magnetic field strength in tesla (None for mammography).
        phase_index: 0 for pre-contrast, k for post-contrast phase k, None otherwise.
        phase_offset_s: acquisition time relative to the pre-contrast series (s).
        shape: ``(Z, Y, X)``; dtype: numpy dtype name; spacing_mm: ``(Z, Y, X)`` mm.
        transfer_syntax: source transfer syntax UID.
        content_hash: ``sha256:...`` of the stored voxels.
        source_fingerprint: keyed pseudonym of the source instance UIDs, used to
            tell a re-sent identical series from a changed one.
        n_source_files, source_bytes: size of the source series.
        breastflow_version: version that wrote it.
        breast_evidence: codes of the header evidence that the series shows the
            breast (see :mod:`breastflow.dicom.breast_evidence`; empty when it was
            stored with ``--accept any`` without evidence, or by an older version).
        intensity_unit: the study's intensity unit (pre-contrast series only; see
            :mod:`breastflow.data.intensity`), ``None`` when not computed at ingest;
            intensity_unit_rule: the rule that computed it (readers use the unit
            only when it matches their own rule, else compute it themselves).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    study: str
    patient: str
    series: str
    source_series: str
    modality: str
    vendor: str | None = None
    model: str | None = None
    field_strength_t: float | None = None
    phase_index: int | None = None
    phase_offset_s: float | None = None
    shape: tuple[int, int, int]
    dtype: str
    spacing_mm: tuple[float, float, float]
    transfer_syntax: str | None = None
    content_hash: str
    source_fingerprint: str
    n_source_files: int
    source_bytes: int
    breastflow_version: str
    breast_evidence: tuple[str, ...] = ()
    intensity_unit: float | None = None
    intensity_unit_rule: str | None = None


def write_commit(loc: StoreLocation, record: SeriesRecord) -> None:
    """Commit a fully written and verified series by writing its marker atomically."""
    payload = json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=1).encode()
    atomic_write_bytes(loc, layout.commit_marker(record.study, record.series), payload)


def read_commit(loc: StoreLocation, study: str, series: str) -> SeriesRecord | None:
    """The marker of a series, or None when the series is not committed."""
    try:
        return SeriesRecord.model_validate_json(read_bytes(loc, layout.commit_marker(study, series)))
    except FileNotFoundError:
        return None


def read_markers(loc: StoreLocation, prefix: str, model: type[Marker], what: str) -> list[Marker]:
    """Every JSON marker under ``prefix``, parsed as ``model``, in one batched read.

    Args:
        prefix: store-relative folder of the markers (e.g. ``layout.COMMITS``).
        model: pydantic model of one marker.
        what: marker kind for error messages (e.g. ``"commit"``).

    Raises:
        ValueError: a marker is corrupt (names the object).
    """
    fs = loc.filesystem()
    try:
        paths = sorted(p for p in fs.find(loc.fs_path(prefix)) if p.endswith(".json"))
    except FileNotFoundError:
        return []
    if not paths:
        return []
    contents = fs.cat(paths) if len(paths) > 1 else {paths[0]: fs.cat_file(paths[0])}
    records = []
    for path in sorted(contents):
        try:
            records.append(model.model_validate_json(contents[path]))
        except ValueError as err:
            raise ValueError(f"corrupt {what} marker {path}: {err}") from err
    return records


def read_commits(loc: StoreLocation) -> list[SeriesRecord]:
    """Every committed series in the store, sorted by (study, series).

    Raises:
        ValueError: a marker is corrupt (names the object).
    """
    records = read_markers(loc, layout.COMMITS, SeriesRecord, "commit")
    return sorted(records, key=lambda r: (r.study, r.series))
