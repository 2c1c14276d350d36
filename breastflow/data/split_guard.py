"""Patient-level split guard: no patient of another split ever reaches a dataset (explicit, raising check).

Splits are assigned per patient by the catalog (:mod:`breastflow.store.splits`),
so a consistent catalog cannot place one patient in two splits. This guard
checks it anyway, every time a dataset is built, because a stale or
hand-edited catalog, a changed split seed or a merge of stores could break it
silently - and a test patient in training invalidates every result.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from breastflow.store.splits import Split


class SplitLeakageError(ValueError):
    """Patients of one split appear in another split's data."""


def assert_disjoint(patients: Iterable[str], held_out: Iterable[str], split: Split, other: str) -> None:
    """Raise when any of ``patients`` (a ``split`` dataset) is among ``held_out`` (``other`` splits).

    Raises:
        SplitLeakageError: naming how many patients overlap and one pseudonym.
    """
    overlap = sorted(set(patients) & set(held_out))
    if overlap:
        raise SplitLeakageError(
            f"{len(overlap)} patient(s) of the {split.value} dataset also have {other} data "
            f"(e.g. {overlap[0]}): the catalog's patient-level split is broken; rebuild it "
            "(breastflow ingest re-runs rebuild the catalog) before training")


def check_split(catalog: pd.DataFrame, split: Split, patients: Iterable[str]) -> None:
    """Check that ``patients`` (chosen for ``split``) have no catalog rows in any other split.

    Args:
        catalog: the store's catalog (columns ``patient``, ``split``).
        split: the dataset's split; patients: the patients the dataset reads.

    Raises:
        SplitLeakageError: see :func:`assert_disjoint`.
    """
    others = catalog[catalog.split != split.value]
    assert_disjoint(patients, others.patient, split, "/".join(sorted(others.split.unique())) or "other")
