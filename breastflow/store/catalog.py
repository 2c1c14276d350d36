"""The catalog: one Parquet table of every committed series, with study columns and split.

One row per committed series (``study``, ``series`` unique). Study-level
columns are repeated on each row: ``patient``, ``phases_present`` (the study's
committed DCE phases as a sorted list of role names), ``n_series`` and
``split``. The table is rebuilt from the commit markers (the source of truth)
and written atomically, so readers see the previous or the new catalog.

Later stages read it with :func:`read_catalog` (or plain
``pandas.read_parquet``).
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from breastflow.store import layout
from breastflow.store.commit import SeriesRecord, read_commits
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes
from breastflow.store.splits import SplitConfig, assign_splits

COLUMNS = (
    "study", "patient", "series", "split", "phases_present", "n_series", "modality", "vendor", "model",
    "field_strength_t", "phase_index", "phase_offset_s", "z", "y", "x", "dtype", "spacing_z_mm",
    "spacing_y_mm", "spacing_x_mm", "transfer_syntax", "content_hash", "source_series",
    "n_source_files", "source_bytes", "breastflow_version",
)


def records_to_catalog(records: list[SeriesRecord], splits: SplitConfig) -> pd.DataFrame:
    """Project commit records to the catalog table (one row per series, sorted).

    Args:
        records: committed series.
        splits: split configuration (seed and fractions).
    """
    rows = []
    by_study: dict[str, list[SeriesRecord]] = {}
    for record in records:
        by_study.setdefault(record.study, []).append(record)
    split_of = assign_splits((r.patient for r in records), splits)
    for study, members in sorted(by_study.items()):
        phases = sorted((r.series for r in members if r.phase_index is not None),
                        key=lambda name: next(r.phase_index for r in members if r.series == name))
        for r in sorted(members, key=lambda m: m.series):
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
                "breastflow_version": r.breastflow_version,
            })
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"phase_index": "Int64", "field_strength_t": "Float64", "phase_offset_s": "Float64"})


def rebuild_catalog(loc: StoreLocation, splits: SplitConfig) -> pd.DataFrame:
    """Rebuild the catalog from the commit markers and write it atomically.

    Returns:
        The catalog table that was written.
    """
    frame = records_to_catalog(read_commits(loc), splits)
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
