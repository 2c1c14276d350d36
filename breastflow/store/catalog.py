"""The catalog: one Parquet table of every committed series, with study columns and split.

One row per committed series (``study``, ``series`` unique). Study-level
columns are repeated on each row: ``patient``, ``phases_present`` (the study's
committed DCE phases as a sorted list of role names), ``n_series``, ``split``
and the annotation columns ``annotated`` (a committed annotation marker
exists), ``n_lesions`` (``<NA>`` when not annotated; 0 = annotated healthy),
``lesion_classes`` and ``has_mask``. ``breast_evidence`` lists the codes of
the header evidence that the series shows the breast (``body-part``,
``receive-coil``, ``dynamic-contrast-set`` ...; empty for series stored with
``--accept any`` without evidence). Mammography rows carry ``view`` (CC/MLO)
and ``laterality`` (L/R), read from the classifier's series name
``mg_<l|r>_<cc|mlo>``. The table is rebuilt from the commit markers (the
source of truth) and written atomically, so readers see the previous or the
new catalog.

Later stages read it with :func:`read_catalog` (or plain
``pandas.read_parquet``).
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from breastflow.store import layout
from breastflow.store.annotation_commit import AnnotationRecord, read_annotation_commits
from breastflow.store.commit import SeriesRecord, read_commits
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes
from breastflow.store.splits import SplitConfig, assign_splits

COLUMNS = (
    "study", "patient", "series", "split", "phases_present", "n_series", "modality", "vendor", "model",
    "field_strength_t", "phase_index", "phase_offset_s", "z", "y", "x", "dtype", "spacing_z_mm",
    "spacing_y_mm", "spacing_x_mm", "transfer_syntax", "content_hash", "source_series",
    "n_source_files", "source_bytes", "breastflow_version", "view", "laterality", "annotated", "n_lesions",
    "lesion_classes", "has_mask", "breast_evidence",
)
_MAMMO_NAME = re.compile(r"^mg_([lr])_(cc|mlo)(?:_\d+)?$")


def view_of(series: str) -> tuple[str | None, str | None]:
    """``(view, laterality)`` of a mammography series name (``mg_l_cc`` -> ``("CC", "L")``), else Nones."""
    match = _MAMMO_NAME.match(series)
    return (match.group(2).upper(), match.group(1).upper()) if match else (None, None)


def records_to_catalog(records: list[SeriesRecord], splits: SplitConfig,
                       annotations: list[AnnotationRecord] | None = None) -> pd.DataFrame:
    """Project commit records to the catalog table (one row per series, sorted).

    Args:
        records: committed series.
        splits: split configuration (seed and fractions).
        annotations: committed study annotations (studies without one get ``annotated=False``).
    """
    annotated = {a.study: a for a in annotations or []}
    rows = []
    by_study: dict[str, list[SeriesRecord]] = {}
    for record in records:
        by_study.setdefault(record.study, []).append(record)
    split_of = assign_splits((r.patient for r in records), splits)
    for study, members in sorted(by_study.items()):
        phases = sorted((r.series for r in members if r.phase_index is not None),
                        key=lambda name: next(r.phase_index for r in members if r.series == name))
        note = annotated.get(study)
        for r in sorted(members, key=lambda m: m.series):
            view, laterality = view_of(r.series)
            rows.append({
                "study": study, "patient": r.patient, "series": r.series,
                "split": split_of[r.patient].value, "phases_present": phases, "n_series": len(members),
                "modality": r.modality, "vendor": r.vendor, "model": r.model,
                "field_strength_t": r.field_strength_t, "phase_index": r.phase_index,
                "phase_offset_s": r.phase_offset_s, "z": r.shape[0], "y": r.shape[1], "x": r.shape[2],
                "dtype": r.dtype, "spacing_z_mm": r.spacing_mm[0], "spacing_y_mm": r.spacing_mm[1],
                "spacing_x_mm": r.spacing_mm[2], "transfer_syntax": r.transfer_syntax,
                "content_hash": r.content_hash, "source_series": r.source_series,
                "n_source_files": r.n_source_files, "source_bytes": r.source_bytes,
                "breastflow_version": r.breastflow_version, "view": view, "laterality": laterality,
                "annotated": note is not None, "n_lesions": note.n_lesions if note else None,
                "lesion_classes": [c or "" for c in note.lesion_classes] if note else [],
                "has_mask": bool(note and note.has_mask),
                "breast_evidence": list(r.breast_evidence),
            })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"phase_index": "Int64", "field_strength_t": "Float64", "phase_offset_s": "Float64",
                         "n_lesions": "Int64", "annotated": bool, "has_mask": bool})


def rebuild_catalog(loc: StoreLocation, splits: SplitConfig) -> pd.DataFrame:
    """Rebuild the catalog from the commit markers and write it atomically.

    Returns:
        The catalog table that was written.
    """
    frame = records_to_catalog(read_commits(loc), splits, read_annotation_commits(loc))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"breastflow.split_seed": str(splits.seed).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    atomic_write_bytes(loc, layout.CATALOG_FILE, sink.getvalue())
    return frame


def read_catalog(loc: StoreLocation) -> pd.DataFrame:
    """The store's catalog; an empty table when nothing has been committed yet."""
    try:
        data = read_bytes(loc, layout.CATALOG_FILE)
    except FileNotFoundError:
        return pd.DataFrame(columns=list(COLUMNS))
    return pq.read_table(io.BytesIO(data)).to_pandas()
