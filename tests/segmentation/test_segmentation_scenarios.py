"""Paper 003's scenarios as data: deduplicated training sets, disjoint patients, cross-vendor rows, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from segmentation_helpers import build_segmentation_store

from breastflow.generate.synthetic import SyntheticSetError
from breastflow.segmentation.cases import NoMaskError, segmentation_cases
from breastflow.segmentation.experiment import (
    build_experiment,
    check_experiment_patients,
    fold_items,
    test_items,
    train_items,
)
from breastflow.segmentation.preprocess import SegmentationSource
from breastflow.segmentation.scenarios import (
    SCENARIOS,
    RowRole,
    ScenarioError,
    TrainSet,
    check_disjoint_patients,
    cross_vendor_rows,
    parse_scenarios,
    scenario_rows,
    source_transforms,
    train_set_of,
    training_sets,
)

PRE, POST, SYN = SegmentationSource.REAL_PRE, SegmentationSource.REAL_POST, SegmentationSource.SYN_POST


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_segmentation_store(str(tmp_path_factory.mktemp("seg") / "store")).url


def test_table3_rows_and_tests() -> None:
    rows = scenario_rows("1,2,3,4")
    assert [len(SCENARIOS[k]) for k in (1, 2, 3, 4)] == [3, 3, 5, 3] and len(rows) == 14
    assert {r.test for r in SCENARIOS[1]} == {PRE} and {r.test for r in SCENARIOS[2]} == {POST}
    assert {r.test for r in SCENARIOS[3]} == {POST} and {r.test for r in SCENARIOS[4]} == {PRE}
    assert [r.role for r in SCENARIOS[3]] == [RowRole.BASELINE] + [RowRole.AUGMENTATION] * 3 + [RowRole.SYNTHETIC_ONLY]
    assert SCENARIOS[2][0].paper_dice == 0.484 and SCENARIOS[2][1].paper_dice == 0.663


def test_identical_training_sets_are_trained_once() -> None:
    sets = training_sets(scenario_rows([1, 2, 3, 4]))
    assert list(sets) == ["real_pre", "real_pre+syn_post", "syn_post", "real_post", "real_post+syn_post",
                          "real_post+real_pre", "real_post+real_pre+syn_post"]
    assert list(training_sets(scenario_rows([1, 2]))) == ["real_pre", "real_pre+syn_post", "syn_post"]
    assert TrainSet((SYN, PRE, POST)).key == TrainSet((POST, PRE, SYN)).key == "real_post+real_pre+syn_post"
    assert TrainSet((PRE, SYN)).label == "real pre + syn post"
    with pytest.raises(ValueError, match="distinct sources"):
        TrainSet((PRE, PRE))


@pytest.mark.parametrize(("text", "message"), [("5", "out of range"), ("0,1", "out of range"), ("two", "not a number"),
                                               ("", "no scenario")])
def test_bad_scenario_numbers(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenarios(text)
    assert parse_scenarios("4, 2,2") == [2, 4]


def test_train_set_of_names_the_valid_sets() -> None:
    assert train_set_of(2, "real_pre+syn_post") == (TrainSet((PRE, SYN)), POST)
    message = "scenario 1 has no training set 'real_post'.*real_pre, real_pre\\+syn_post"
    with pytest.raises(ScenarioError, match=message):
        train_set_of(1, "real_post")
    with pytest.raises(ScenarioError, match="out of range"):
        train_set_of(9, "real_pre")


def test_experiment_patients_are_disjoint_in_every_scenario_and_fold(store: str) -> None:
    data = build_experiment(store, "1,2,3,4", "syn")
    assert len(data.folds) == 5 and len(data.train_sets) == 7
    check_experiment_patients(data)  # raises on any overlap
    test_patients = {i.case.patient for i in test_items(data.cases, POST)}
    for train_set in data.train_sets.values():
        items = train_items(data.cases, train_set)
        assert len(items) == 7 * len(train_set.sources)  # one unlinked item per pool case and source
        assert len({i.identifier for i in items}) == len(items)
        validated = []
        for fold in data.folds:
            train, val = fold_items(items, fold)
            check_disjoint_patients((i.case.patient for i in train), (i.case.patient for i in val), test_patients)
            validated += [i.identifier for i in val]
        assert sorted(validated) == sorted(i.identifier for i in items)  # each item validated exactly once


def test_check_disjoint_patients_raises_on_overlap() -> None:
    with pytest.raises(AssertionError, match=r"train/test: \['p1'\]"):
        check_disjoint_patients(["p0", "p1"], ["p2"], ["p1"], where="x")


def test_experiment_bad_input(store: str, tmp_path) -> None:
    with pytest.raises(SyntheticSetError, match=r"no synthetic set 'gone' \(sets present: syn\)"):
        build_experiment(store, [2], "gone")
    with pytest.raises(SyntheticSetError, match="name the synthetic set"):
        build_experiment(store, [2], None)
    with pytest.raises(ScenarioError, match="out of range"):
        build_experiment(store, [5], "syn")
    with pytest.raises(NoMaskError):
        build_experiment(str(tmp_path / "empty"), [1], "syn")
    assert build_experiment(store, [3], "syn").synthetic == "syn"


def test_incomplete_synthetic_set_lists_missing_cases(tmp_path) -> None:
    from segmentation_helpers import write_synthetic_set

    loc = build_segmentation_store(str(tmp_path / "store"), synthetic=None)
    write_synthetic_set(loc, "partial", ["cv-0", "cv-1"])
    with pytest.raises(SyntheticSetError, match="lacks post_1 for 5 segmentation case"):
        build_experiment(loc.url, [1], "partial")


def test_cross_vendor_rows_and_identity_transforms(store: str) -> None:
    cases = segmentation_cases(store)
    rows = cross_vendor_rows(cases)
    assert [(r.train_vendor, r.test_vendor, r.cross) for r in rows] == [
        ("ge", "ge", False), ("ge", "siemens", True), ("siemens", "ge", True), ("siemens", "siemens", False)]
    assert rows[1].key == "real_post@ge" and rows[1].test is POST
    for row in rows:
        train = train_items(cases, row.train, vendor=row.train_vendor)
        tests = test_items(cases, row.test, vendor=row.test_vendor)
        assert train and tests and {i.case.vendor for i in train} == {row.train_vendor}
        check_disjoint_patients((i.case.patient for i in train), [], (i.case.patient for i in tests))
    transforms = source_transforms()
    image = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    assert set(transforms) == set(SegmentationSource)
    assert all(transforms[s](image, "cv-0") is image for s in SegmentationSource)
    doubled = source_transforms({POST: lambda a, study: 2 * a})
    assert np.array_equal(doubled[POST](image, "cv-0"), 2 * image) and doubled[PRE](image, "cv-0") is image
