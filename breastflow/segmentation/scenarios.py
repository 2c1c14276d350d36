"""Paper 003's four segmentation scenarios (Table 3) as data, plus the cross-vendor rows.

A **row** trains on a training-set composition (a set of image sources) and
tests on one source:

1. real pre | real pre + syn post | syn post -> test real pre;
2. the same training sets -> test real post (domain shift);
3. real post | real post + syn post | real post + real pre |
   real post + real pre + syn post | syn post -> test real post;
4. real post | real post + syn post | syn post -> test real pre (domain shift).

Identical compositions are trained once: :attr:`TrainSet.key` names a
composition, and :func:`training_sets` deduplicates the rows' sets (the four
scenarios need 7 trainings, not 14). In an augmented set every case
contributes one separate, unlinked training item per source, as the paper
("the model does not receive any indication that ... pertain to the same
patient").

**Cross-vendor rows** (NIH R01 harmonisation hook, ``shared/papers/002``):
train on the cases of vendor A, test on vendor B, with an image transform per
source applied before training and testing - the identity today, a
harmonisation generator later (:data:`SourceTransform`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from breastflow.segmentation.cases import SegmentationCase, pool_cases, test_cases
from breastflow.segmentation.preprocess import SegmentationSource

PRE, POST, SYN = SegmentationSource.REAL_PRE, SegmentationSource.REAL_POST, SegmentationSource.SYN_POST
_ORDER = {POST: 0, PRE: 1, SYN: 2}  # the paper's order: real post + real pre + syn post
_LABEL = {PRE: "real pre", POST: "real post", SYN: "syn post"}

#: An image transform of one source: ``(image (Z, Y, X) float32, study) -> image`` (identity today).
SourceTransform = Callable[[np.ndarray, str], np.ndarray]


class ScenarioError(ValueError):
    """A scenario number or training-set name that does not exist (the message lists the valid ones)."""


class RowRole(str, Enum):
    """What a row is in its scenario."""

    BASELINE = "baseline"
    AUGMENTATION = "augmentation"
    SYNTHETIC_ONLY = "synthetic_only"


@dataclass(frozen=True)
class TrainSet:
    """A training-set composition: the image sources every training case contributes."""

    sources: tuple[SegmentationSource, ...]

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ValueError(f"a training set needs distinct sources, got {self.sources}")
        object.__setattr__(self, "sources", tuple(sorted(self.sources, key=_ORDER.__getitem__)))

    @property
    def key(self) -> str:
        """Canonical name, e.g. ``real_post+real_pre+syn_post`` (equal compositions, equal keys)."""
        return "+".join(s.value for s in self.sources)

    @property
    def label(self) -> str:
        """Human label, e.g. ``real post + syn post``."""
        return " + ".join(_LABEL[s] for s in self.sources)

    @property
    def synthetic(self) -> bool:
        return SYN in self.sources


@dataclass(frozen=True)
class ScenarioRow:
    """One row of Table 3.

    Attributes:
        scenario: 1-4; train: the composition; test: the test source; role: baseline,
            augmentation or synthetic only; paper_dice: the ensemble Dice paper 003 reports.
    """

    scenario: int
    train: TrainSet
    test: SegmentationSource
    role: RowRole
    paper_dice: float


def _rows(scenario: int, test: SegmentationSource, rows: Sequence[tuple[tuple[SegmentationSource, ...], float]]
          ) -> tuple[ScenarioRow, ...]:
    out = []
    for i, (sources, dice) in enumerate(rows):
        role = RowRole.BASELINE if i == 0 else RowRole.SYNTHETIC_ONLY if sources == (SYN,) else RowRole.AUGMENTATION
        out.append(ScenarioRow(scenario, TrainSet(sources), test, role, dice))
    return tuple(out)


#: Paper 003, Table 3 (Dice of the 5-fold ensembles on the 30 test cases).
SCENARIOS: dict[int, tuple[ScenarioRow, ...]] = {
    1: _rows(1, PRE, [((PRE,), 0.569), ((PRE, SYN), 0.531), ((SYN,), 0.486)]),
    2: _rows(2, POST, [((PRE,), 0.484), ((PRE, SYN), 0.663), ((SYN,), 0.687)]),
    3: _rows(3, POST, [((POST,), 0.790), ((POST, SYN), 0.797), ((POST, PRE), 0.780), ((POST, PRE, SYN), 0.770),
                       ((SYN,), 0.687)]),
    4: _rows(4, PRE, [((POST,), 0.164), ((POST, SYN), 0.409), ((SYN,), 0.486)]),
}


def parse_scenarios(text: str | Iterable[int]) -> list[int]:
    """Scenario numbers from ``"1,2,3,4"`` (or an iterable), sorted, deduplicated.

    Raises:
        ScenarioError: not a number, or out of range.
    """
    items = [p.strip() for p in text.split(",") if p.strip()] if isinstance(text, str) else list(text)
    numbers = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError) as err:
            raise ScenarioError(f"scenario {item!r} is not a number; choose from {sorted(SCENARIOS)}") from err
        if number not in SCENARIOS:
            raise ScenarioError(f"scenario {number} is out of range; paper 003 has scenarios {sorted(SCENARIOS)}")
        numbers.append(number)
    if not numbers:
        raise ScenarioError(f"no scenario given; choose from {sorted(SCENARIOS)}")
    return sorted(set(numbers))


def scenario_rows(numbers: str | Iterable[int]) -> list[ScenarioRow]:
    """The rows of the given scenarios, in scenario and table order (raises :class:`ScenarioError`)."""
    return [row for n in parse_scenarios(numbers) for row in SCENARIOS[n]]


def training_sets(rows: Iterable[ScenarioRow]) -> dict[str, TrainSet]:
    """The distinct compositions of ``rows`` by key, in first-use order (each is trained once)."""
    out: dict[str, TrainSet] = {}
    for row in rows:
        out.setdefault(row.train.key, row.train)
    return out


def train_set_of(scenario: int, key: str) -> tuple[TrainSet, SegmentationSource]:
    """The composition named ``key`` in scenario ``scenario`` and that scenario's test source.

    Raises:
        ScenarioError: unknown scenario, or ``key`` not among its rows (lists them).
    """
    rows = scenario_rows([scenario])
    for row in rows:
        if row.train.key == key:
            return row.train, row.test
    raise ScenarioError(f"scenario {scenario} has no training set {key!r}; its training sets are: "
                        f"{', '.join(r.train.key for r in rows)}")


def identity(image: np.ndarray, study: str) -> np.ndarray:
    """The identity :data:`SourceTransform` (no harmonisation)."""
    return image


def source_transforms(overrides: Mapping[SegmentationSource, SourceTransform] | None = None
                      ) -> dict[SegmentationSource, SourceTransform]:
    """One transform per source: :func:`identity` unless ``overrides`` gives one (a harmonisation generator)."""
    return {source: (overrides or {}).get(source, identity) for source in SegmentationSource}


@dataclass(frozen=True)
class CrossVendorRow:
    """Train on vendor ``train_vendor``'s pool cases, test on ``test_vendor``'s test cases.

    Attributes:
        train, test: composition and test source (default real post -> real post).
        cross: the vendors differ (same-vendor rows are the reference).
    """

    train_vendor: str
    test_vendor: str
    train: TrainSet
    test: SegmentationSource

    @property
    def cross(self) -> bool:
        return self.train_vendor != self.test_vendor

    @property
    def key(self) -> str:
        """The training's key: the composition restricted to one vendor, ``real_post@ge``."""
        return f"{self.train.key}@{self.train_vendor}"


def cross_vendor_rows(cases: Sequence[SegmentationCase], train: TrainSet = TrainSet((POST,)),
                      test: SegmentationSource = POST) -> list[CrossVendorRow]:
    """Every (train vendor, test vendor) pair the cases allow: pool cases of A, test cases of B.

    Returns:
        Rows sorted by vendors; empty when no vendor has both pool and test cases
        of its own or of another vendor.
    """
    train_vendors = sorted({c.vendor for c in pool_cases(cases)})
    test_vendors = sorted({c.vendor for c in test_cases(cases)})
    return [CrossVendorRow(a, b, train, test) for a in train_vendors for b in test_vendors]


def check_disjoint_patients(train: Iterable[str], val: Iterable[str], test: Iterable[str], where: str = "") -> None:
    """Assert that the train, validation and test patient sets share no patient.

    Raises:
        AssertionError: naming the overlapping patients and ``where``.
    """
    train_set, val_set, test_set = set(train), set(val), set(test)
    for name, overlap in (("train/val", train_set & val_set), ("train/test", train_set & test_set),
                          ("val/test", val_set & test_set)):
        assert not overlap, f"{where}: patients in both {name}: {sorted(overlap)}"
