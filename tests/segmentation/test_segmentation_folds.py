"""Patient-level 5-fold cross-validation: disjoint, covering, deterministic."""

from __future__ import annotations

import pytest

from breastflow.segmentation.folds import Fold, check_folds, patient_folds


@pytest.mark.parametrize("n", [5, 7, 23])
def test_folds_are_disjoint_and_cover_every_patient(n: int) -> None:
    patients = [f"p{i}" for i in range(n)]
    folds = patient_folds(patients + patients[:3])  # several studies of a patient: one patient
    assert len(folds) == 5
    check_folds(folds, patients)
    sizes = sorted(len(f.val) for f in folds)
    assert sizes[-1] - sizes[0] <= 1 and sum(sizes) == n
    for fold in folds:
        assert not set(fold.train) & set(fold.val)
        assert len(fold.train) + len(fold.val) == n


def test_folds_are_deterministic_and_seeded() -> None:
    patients = [f"p{i}" for i in range(20)]
    assert patient_folds(patients) == patient_folds(list(reversed(patients)))
    assert patient_folds(patients, seed=1) != patient_folds(patients, seed=0)


def test_too_few_patients_or_folds_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 5 training patients, got 3"):
        patient_folds(["a", "b", "c"])
    with pytest.raises(ValueError, match="at least 2 folds"):
        patient_folds(["a", "b", "c"], k=1)


def test_check_folds_catches_overlap_and_gaps() -> None:
    with pytest.raises(AssertionError, match="in train and val"):
        check_folds([Fold(0, ("a", "b"), ("b",))], ["a", "b"])
    with pytest.raises(AssertionError, match="never validated"):
        check_folds([Fold(0, ("a",), ("b",))], ["a", "b"])
