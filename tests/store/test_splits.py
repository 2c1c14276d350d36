import pytest

from breastflow.store.splits import Split, SplitConfig, assign_splits, split_of

PATIENTS = [f"p{i:05d}" for i in range(3000)]


def test_same_seed_same_splits_and_other_seed_differs():
    config = SplitConfig(seed=7)
    first = assign_splits(PATIENTS, config)
    assert first == assign_splits(reversed(PATIENTS), config)
    other = assign_splits(PATIENTS, SplitConfig(seed=8))
    assert sum(first[p] != other[p] for p in PATIENTS) > 500


def test_adding_patients_never_moves_existing_ones():
    config = SplitConfig(seed=3)
    before = assign_splits(PATIENTS[:1000], config)
    after = assign_splits(PATIENTS, config)
    assert all(after[p] is before[p] for p in before)


def test_fractions_match_within_binomial_bounds():
    splits = list(assign_splits(PATIENTS, SplitConfig(seed=1, train=0.7, val=0.15)).values())
    n = len(splits)
    for split, p in ((Split.TRAIN, 0.7), (Split.VAL, 0.15), (Split.TEST, 0.15)):
        sd = (n * p * (1 - p)) ** 0.5
        assert abs(splits.count(split) - n * p) < 4 * sd


@pytest.mark.parametrize(("train", "val"), [(0.9, 0.2), (0.0, 0.1)])
def test_invalid_fractions_are_refused(train, val):
    with pytest.raises(ValueError):
        SplitConfig(train=train, val=val)


def test_empty_patient_is_refused():
    with pytest.raises(ValueError, match="patient pseudonym is empty"):
        split_of("", SplitConfig())
