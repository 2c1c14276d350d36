"""Catalog rows a dataset plans from: one split, guarded, and the studies holding the series it needs.

Shared by the families that choose items from the catalog
(:mod:`.vendor_domains`, :mod:`.lesion_patches`, :mod:`.mammograms`). Errors
name the store and what is missing, so a wrong store or phase is found
when the dataset is built, not in a worker.
"""

from __future__ import annotations

import pandas as pd

from breastflow.data.datasets.base import DatasetError
from breastflow.data.split_guard import check_split
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split


def split_rows(loc: StoreLocation, catalog: pd.DataFrame, split: Split, family: str) -> pd.DataFrame:
    """The catalog rows of ``split``, after checking that none of its patients is in another split.

    Args:
        loc: the store (for messages); catalog: its catalog; split: the dataset's split;
        family: registered name of the dataset (for messages).

    Returns:
        The rows of ``split`` (one per committed series).

    Raises:
        DatasetError: the store has no committed series or no studies in ``split``.
        breastflow.data.split_guard.SplitLeakageError: a patient of ``split`` also has rows in another split.
    """
    if catalog.empty:
        raise DatasetError(f"{family}: store {loc.url} has no committed series (is it a breastflow store?)")
    rows = catalog[catalog.split == split.value]
    if rows.empty:
        raise DatasetError(f"{family}: store {loc.url} has no {split.value} studies "
                           f"(splits present: {', '.join(sorted(catalog.split.unique()))})")
    check_split(catalog, split, rows.patient.unique())
    return rows


def studies_with(rows: pd.DataFrame, series: tuple[str, ...]) -> tuple[list[str], dict[str, int]]:
    """The studies of ``rows`` holding every one of ``series``, and how many lack each.

    Returns:
        ``(studies, lacking)``: sorted study pseudonyms with every series, and
        ``{series: number of studies without it}`` for the series some study lacks.
    """
    present = rows.groupby("study").series.agg(set)
    lacking = {s: int(sum(s not in names for names in present)) for s in series}
    studies = sorted(study for study, names in present.items() if all(s in names for s in series))
    return studies, {s: n for s, n in lacking.items() if n}


def missing_message(loc: StoreLocation, family: str, split: Split, lacking: dict[str, int], total: int) -> str:
    """One message naming the store, the split and each missing series with its count."""
    parts = ", ".join(f"{series!r} is missing in {n} of {total}" for series, n in lacking.items())
    return f"{family}: store {loc.url}: {parts} {split.value} studies"
