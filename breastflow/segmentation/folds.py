"""5-fold cross-validation of the training patients: deterministic, patient-level.

Paper 003 trains one 3D U-Net per fold of a 5-fold cross-validation (80 %
training, 20 % validation) and ensembles the five for the test set. nnU-Net
splits *cases* with ``KFold(shuffle=True, random_state=12345)``; breastflow
splits *patients*, so every study (and every augmented copy of a study: real
pre, real post, synthetic post) of a patient lands in the same fold. The order
is a SHA-256 of ``(seed, patient)``, so a patient's fold does not depend on
which other patients are present beyond their rank, and the same store gives
the same folds on every machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: Folds of paper 003 (and nnU-Net's default).
N_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """One fold: the patients trained on and the patients validated on.

    Attributes:
        index: fold number ``0 .. k-1``.
        train, val: sorted patient pseudonyms (disjoint).
    """

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]


def _rank_key(patient: str, seed: int) -> str:
    return hashlib.sha256(f"breastflow-segmentation-fold:{seed}:{patient}".encode()).hexdigest()


def patient_folds(patients: Iterable[str], k: int = N_FOLDS, seed: int = 0) -> list[Fold]:
    """Split patients into ``k`` folds; fold ``i`` validates on the ``i``-th share and trains on the rest.

    Patients are ordered by a seeded hash and dealt round-robin, so fold sizes
    differ by at most one and each patient is validated exactly once.

    Args:
        patients: patient pseudonyms (duplicates are merged: several studies of one patient).
        k: number of folds (>= 2).
        seed: order seed.

    Returns:
        ``k`` :class:`Fold` objects.

    Raises:
        ValueError: ``k < 2`` or fewer distinct patients than folds.
    """
    unique = sorted(set(patients))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got k={k}")
    if len(unique) < k:
        raise ValueError(f"{k}-fold cross-validation needs at least {k} training patients, got {len(unique)} "
                         f"({', '.join(unique) or 'none'}); add annotated studies or lower the number of folds")
    ordered = sorted(unique, key=lambda p: _rank_key(p, seed))
    shares = [sorted(ordered[i::k]) for i in range(k)]
    return [Fold(index=i, train=tuple(sorted(p for j, share in enumerate(shares) if j != i for p in share)),
                 val=tuple(shares[i])) for i in range(k)]


def check_folds(folds: Sequence[Fold], patients: Iterable[str]) -> None:
    """Assert that every fold's train and val are disjoint and that the val shares partition ``patients``.

    Raises:
        AssertionError: a patient in both train and val of a fold, validated twice or never,
            or a fold that does not cover every patient.
    """
    everyone = set(patients)
    seen: set[str] = set()
    for fold in folds:
        both = set(fold.train) & set(fold.val)
        assert not both, f"fold {fold.index}: patients in train and val: {sorted(both)}"
        assert set(fold.train) | set(fold.val) == everyone, f"fold {fold.index} does not cover every patient"
        twice = seen & set(fold.val)
        assert not twice, f"fold {fold.index}: patients validated twice: {sorted(twice)}"
        seen |= set(fold.val)
    assert seen == everyone, f"patients never validated: {sorted(everyone - seen)}"
