"""The segmentation cases of a store: studies with a committed lesion mask, split by patient.

Paper 003 (sec. 3.4 and its data section) trains its 3D U-Nets on the cases
that have a tumour mask, removes the multifocal cases (more than one lesion;
only the primary lesion was annotated there) *before* the 5-fold
cross-validation, and tests on a separate held-out set. Its counts (254 cases
with masks = 224 + 30; 224 - 33 multifocal = 191 for the cross-validation)
show the removal applied to the train/validation pool only: the 30 test cases
are "the same test set" as the synthesis test set. breastflow follows that:

* the **cross-validation pool** (:attr:`CaseSplit.TRAIN`) is every single-lesion
  case whose patient the catalog puts in ``train`` or ``val`` (the 5 folds of
  :mod:`breastflow.segmentation.folds` split it further, by patient);
* the **test set** (:attr:`CaseSplit.TEST`) is every case of a catalog ``test``
  patient, multifocal ones included by default (``multifocal_in_test``; a
  breastflow mask labels every lesion, so Dice on them is meaningful: labels
  ``> 0`` are tumour).

Splits are the catalog's patient-level splits (:mod:`breastflow.store.splits`),
so no patient is in both the pool and the test set. ``test_splits`` names the
catalog splits whose cases are the test set (default ``("test",)``); a small
cohort can widen it to ``("val", "test")``, the studies a generator trained on
the ``train`` split never saw, so that its test set holds enough tumour cases
(the demo does; the pool is then the ``train`` split's cases).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

import pandas as pd

from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation

#: The series whose grid the lesion mask shares (the catalog row the case's geometry comes from).
MASK_SERIES = "pre"


class CaseSplit(str, Enum):
    """Role of a case in the segmentation experiment."""

    TRAIN = "train"  # the 5-fold cross-validation pool (catalog train + val patients by default)
    TEST = "test"  # held-out test set (catalog test patients by default; see ``test_splits``)


#: The catalog splits whose cases are the test set, by default (paper 003: a separate held-out test set).
DEFAULT_TEST_SPLITS: tuple[str, ...] = ("test",)
CATALOG_SPLITS = ("train", "val", "test")


def check_test_splits(test_splits: Iterable[str]) -> tuple[str, ...]:
    """``test_splits`` as a sorted tuple of catalog split names.

    Raises:
        ValueError: empty, an unknown split name, or every split (nothing left to train on).
    """
    splits = tuple(sorted(set(test_splits)))
    unknown = sorted(set(splits) - set(CATALOG_SPLITS))
    if not splits or unknown or set(splits) == set(CATALOG_SPLITS):
        raise ValueError(f"test splits {list(test_splits)}: name one or two of {list(CATALOG_SPLITS)} "
                         f"(unknown: {unknown}); the other splits form the training pool")
    return splits


class NoMaskError(ValueError):
    """The store has no study with a committed lesion mask (the message says what it has)."""


@dataclass(frozen=True)
class SegmentationCase:
    """One study with a lesion mask.

    Attributes:
        study, patient: pseudonyms.
        split: :class:`CaseSplit` (cross-validation pool or test).
        catalog_split: the catalog's split of the patient (``train``/``val``/``test``).
        vendor: scanner vendor of the pre-contrast series.
        n_lesions: lesions annotated (``> 1`` = multifocal).
        spacing: voxel size ``(dz, dy, dx)`` mm of the mask's grid (the ``pre`` series).
        shape: ``(Z, Y, X)`` of that grid.
        phases: the committed DCE phases of the study (``pre``, ``post_1`` ...).
    """

    study: str
    patient: str
    split: CaseSplit
    catalog_split: str
    vendor: str
    n_lesions: int
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    phases: tuple[str, ...] = ()

    @property
    def multifocal(self) -> bool:
        """More than one lesion annotated."""
        return self.n_lesions > 1


def cases_from_catalog(catalog: pd.DataFrame, multifocal_in_test: bool = True,
                       where: str = "store", test_splits: Iterable[str] = DEFAULT_TEST_SPLITS
                       ) -> list[SegmentationCase]:
    """The segmentation cases of a catalog table, sorted by study.

    Args:
        catalog: the store's catalog (:func:`breastflow.store.catalog.read_catalog`).
        multifocal_in_test: keep multifocal cases in the test set (paper 003's test
            set was not filtered); they are always left out of the training pool.
        where: the store's URL, for messages.
        test_splits: catalog splits whose cases form the test set (the others form the pool).

    Returns:
        One :class:`SegmentationCase` per study with a committed mask and at least one
        lesion (lesion-free studies and multifocal pool cases dropped).

    Raises:
        NoMaskError: no study of the catalog has a committed lesion mask.
        ValueError: a masked study has no ``pre`` series row in the catalog; bad ``test_splits``.
    """
    tests = check_test_splits(test_splits)
    if catalog.empty or "has_mask" not in catalog:
        raise NoMaskError(f"{where} has no committed series (empty catalog); ingest a cohort with lesion masks first")
    masked = catalog[catalog["has_mask"].astype(bool)]
    if masked.empty:
        n_annotated = catalog.loc[catalog["annotated"].astype(bool), "study"].nunique()
        raise NoMaskError(
            f"{where} has no study with a committed lesion mask ({catalog['study'].nunique()} studies, "
            f"{n_annotated} annotated with boxes only); segmentation needs masks: ingest with "
            "--annotations pointing at NIfTI masks, or a phantom cohort (which writes them)")
    cases = []
    for study, rows in masked.groupby("study", sort=True):
        pre = rows[rows["series"] == MASK_SERIES]
        if pre.empty:
            raise ValueError(f"{where}: study {study} has a lesion mask but no committed {MASK_SERIES!r} series "
                             f"(series: {sorted(rows['series'])})")
        row = pre.iloc[0]
        n_lesions = int(row["n_lesions"]) if pd.notna(row["n_lesions"]) else 0
        if n_lesions == 0:
            continue  # a lesion-free study (empty mask): no tumour to segment, as in paper 003's cases
        split = CaseSplit.TEST if row["split"] in tests else CaseSplit.TRAIN
        if split is CaseSplit.TRAIN and n_lesions > 1:
            continue
        if split is CaseSplit.TEST and n_lesions > 1 and not multifocal_in_test:
            continue
        cases.append(SegmentationCase(
            study=str(study), patient=str(row["patient"]), split=split, catalog_split=str(row["split"]),
            vendor=str(row["vendor"]) if pd.notna(row["vendor"]) else "unknown", n_lesions=n_lesions,
            spacing=(float(row["spacing_z_mm"]), float(row["spacing_y_mm"]), float(row["spacing_x_mm"])),
            shape=(int(row["z"]), int(row["y"]), int(row["x"])),
            phases=tuple(str(p) for p in row["phases_present"])))
    return cases


def segmentation_cases(store: str | StoreLocation, multifocal_in_test: bool = True,
                       test_splits: Iterable[str] = DEFAULT_TEST_SPLITS) -> list[SegmentationCase]:
    """The segmentation cases of a store (see :func:`cases_from_catalog`).

    Raises:
        NoMaskError: the store has no study with a committed lesion mask.
        ValueError: bad ``test_splits``.
    """
    loc = store if isinstance(store, StoreLocation) else StoreLocation.from_url(store)
    return cases_from_catalog(read_catalog(loc), multifocal_in_test, where=f"store {loc.url}",
                              test_splits=test_splits)


def pool_cases(cases: Iterable[SegmentationCase]) -> list[SegmentationCase]:
    """The cross-validation pool (training + validation) cases."""
    return [c for c in cases if c.split is CaseSplit.TRAIN]


def test_cases(cases: Iterable[SegmentationCase]) -> list[SegmentationCase]:
    """The held-out test cases."""
    return [c for c in cases if c.split is CaseSplit.TEST]


test_cases.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into a test module
