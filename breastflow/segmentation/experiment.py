"""A segmentation experiment's data: cases, folds, and the training/validation/test items of each row.

:func:`build_experiment` checks a store once for what the requested scenarios
need (lesion masks, the synthetic set and its coverage) and returns an
:class:`ExperimentData`; :func:`fold_items` and :func:`test_items` turn a
training set into the items a trainer (or the nnU-Net export) consumes. An
item is one ``(case, source)`` volume; in an augmented set each case gives one
item per source, unlinked (paper 003).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from breastflow.generate.synthetic import SyntheticSetError, read_synthetic_commits
from breastflow.segmentation.cases import (
    DEFAULT_TEST_SPLITS,
    SegmentationCase,
    pool_cases,
    segmentation_cases,
    test_cases,
)
from breastflow.segmentation.folds import N_FOLDS, Fold, patient_folds
from breastflow.segmentation.preprocess import POST_SERIES, SegmentationSource
from breastflow.segmentation.scenarios import (
    ScenarioError,
    ScenarioRow,
    TrainSet,
    check_disjoint_patients,
    scenario_rows,
    training_sets,
)
from breastflow.store.fs import StoreLocation


@dataclass(frozen=True)
class SegmentationItem:
    """One training or test volume: a case's image of one source."""

    case: SegmentationCase
    source: SegmentationSource

    @property
    def identifier(self) -> str:
        """Unique item name, ``<study>_<source>`` (the nnU-Net case identifier)."""
        return f"{self.case.study}_{self.source.value}"


@dataclass(frozen=True)
class ExperimentData:
    """What a set of scenarios runs on.

    Attributes:
        store: the store URL; synthetic: the synthetic set (``None`` when no row needs one).
        cases: every segmentation case; rows: the scenario rows;
        train_sets: the distinct compositions by key; folds: the pool patients' folds.
    """

    store: str
    synthetic: str | None
    cases: tuple[SegmentationCase, ...]
    rows: tuple[ScenarioRow, ...]
    train_sets: dict[str, TrainSet]
    folds: tuple[Fold, ...]


def check_synthetic_coverage(loc: StoreLocation, name: str, cases: Iterable[SegmentationCase]) -> None:
    """Check that synthetic set ``name`` holds ``post_1`` for every case.

    Raises:
        SyntheticSetError: the set does not exist (names the sets present) or misses cases.
    """
    have = {r.study for r in read_synthetic_commits(loc, name) if r.series == POST_SERIES}
    missing = sorted({c.study for c in cases} - have)
    if missing:
        raise SyntheticSetError(
            f"synthetic set {name!r} of {loc.url} lacks {POST_SERIES} for {len(missing)} segmentation case(s) "
            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); generate it for every annotated study: "
            f"breastflow generate CHECKPOINT {loc.url} --split all --out {name}")


def build_experiment(store: str | StoreLocation, scenarios: str | Iterable[int], synthetic: str | None,
                     k: int = N_FOLDS, seed: int = 0, multifocal_in_test: bool = True,
                     train_keys: Collection[str] | None = None,
                     test_splits: Iterable[str] = DEFAULT_TEST_SPLITS) -> ExperimentData:
    """Check a store for the scenarios' needs and fix cases, rows and folds.

    Args:
        store: the store; scenarios: numbers (``"1,2"`` or ``[1, 2]``);
        synthetic: the synthetic set used by ``syn_post`` rows.
        k, seed: folds of the pool patients; multifocal_in_test: see :mod:`.cases`.
        train_keys: keep only the rows training on these compositions (e.g. one
            training set to export); ``None`` keeps every row.
        test_splits: catalog splits whose cases are the test set (:func:`~.cases.cases_from_catalog`).

    Raises:
        ScenarioError: a scenario number out of range.
        NoMaskError: no study of the store has a lesion mask.
        SyntheticSetError: a row needs synthetic data and ``synthetic`` is missing, unknown or incomplete.
        ValueError: fewer pool patients than folds, or no test case.
    """
    loc = store if isinstance(store, StoreLocation) else StoreLocation.from_url(store)
    rows = tuple(r for r in scenario_rows(scenarios) if train_keys is None or r.train.key in train_keys)
    if not rows:
        raise ScenarioError(f"scenarios {scenarios} have no training set among {sorted(train_keys or [])}")
    cases = tuple(segmentation_cases(loc, multifocal_in_test, test_splits))
    sets = training_sets(rows)
    if any(s.synthetic for s in sets.values()):
        if not synthetic:
            raise SyntheticSetError("the scenarios train on synthetic post-contrast data: name the synthetic set "
                                    "(--synthetic NAME, a set written by breastflow generate)")
        check_synthetic_coverage(loc, synthetic, pool_cases(cases))
    if not test_cases(cases):
        raise ValueError(f"store {loc.url} has no segmentation case of a test patient; the catalog's "
                         f"{'/'.join(sorted(set(test_splits)))} split(s) hold no study with a lesion mask")
    folds = tuple(patient_folds([c.patient for c in pool_cases(cases)], k, seed))
    data = ExperimentData(store=loc.url, synthetic=synthetic, cases=cases, rows=rows, train_sets=sets, folds=folds)
    check_experiment_patients(data)
    return data


def train_items(cases: Iterable[SegmentationCase], train_set: TrainSet, vendor: str | None = None
                ) -> list[SegmentationItem]:
    """The training items of a composition: one per pool case and source (optionally one vendor's cases)."""
    return [SegmentationItem(c, s) for c in pool_cases(cases) if vendor is None or c.vendor == vendor
            for s in train_set.sources]


def test_items(cases: Iterable[SegmentationCase], source: SegmentationSource, vendor: str | None = None
               ) -> list[SegmentationItem]:
    """The test items of a source: one per test case (optionally one vendor's cases)."""
    return [SegmentationItem(c, source) for c in test_cases(cases) if vendor is None or c.vendor == vendor]


test_items.__test__ = False  # type: ignore[attr-defined]


def fold_items(items: Sequence[SegmentationItem], fold: Fold) -> tuple[list[SegmentationItem], list[SegmentationItem]]:
    """``(train, val)`` items of one fold: an item goes where its patient is.

    Raises:
        ValueError: an item's patient is in neither side of the fold.
    """
    train, val = set(fold.train), set(fold.val)
    stray = sorted({i.case.patient for i in items} - train - val)
    if stray:
        raise ValueError(f"fold {fold.index}: items of patients outside the fold: {stray}")
    return [i for i in items if i.case.patient in train], [i for i in items if i.case.patient in val]


def check_experiment_patients(data: ExperimentData) -> None:
    """Assert, for every training set and fold, that train, validation and test patients are disjoint.

    Raises:
        AssertionError: naming the training set, fold and patients.
    """
    for key, train_set in data.train_sets.items():
        items = train_items(data.cases, train_set)
        tests = {i.case.patient for row in data.rows if row.train.key == key
                 for i in test_items(data.cases, row.test)}
        for fold in data.folds:
            train, val = fold_items(items, fold)
            check_disjoint_patients((i.case.patient for i in train), (i.case.patient for i in val), tests,
                                    where=f"training set {key}, fold {fold.index}")
