"""Patient-level train/val/test splits, deterministic by seed and stable as data arrives.

Each patient pseudonym is hashed with the seed to a number in [0, 1) that
picks its split. Because the assignment depends only on (seed, patient), a
patient keeps its split when new studies are ingested later (no test patient
drifts into training), and all studies and series of a patient share one
split by construction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class Split(str, Enum):
    """Dataset split of a patient."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class SplitConfig(BaseModel):
    """Split fractions and seed.

    Attributes:
        seed: split seed (stored in the store; changing it reshuffles every patient).
        train: fraction of patients in train; val: fraction in val; the rest is test.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(default=0, ge=0)
    train: float = Field(default=0.8, gt=0.0, le=1.0)
    val: float = Field(default=0.1, ge=0.0, le=1.0)

    def model_post_init(self, _context: object) -> None:
        if self.train + self.val > 1.0 + 1e-9:
            raise ValueError(f"train ({self.train}) + val ({self.val}) fractions exceed 1")


def patient_unit(patient: str, seed: int) -> float:
    """A uniform number in [0, 1) derived from ``(seed, patient)`` by SHA-256."""
    digest = hashlib.sha256(f"breastflow-split:{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(patient: str, config: SplitConfig) -> Split:
    """The split of one patient pseudonym.

    Raises:
        ValueError: ``patient`` is empty.
    """
    if not patient:
        raise ValueError("patient pseudonym is empty; every series needs a patient pseudonym to be split")
    unit = patient_unit(patient, config.seed)
    if unit < config.train:
        return Split.TRAIN
    if unit < config.train + config.val:
        return Split.VAL
    return Split.TEST


def assign_splits(patients: Iterable[str], config: SplitConfig) -> dict[str, Split]:
    """Map every distinct patient pseudonym to its split."""
    return {p: split_of(p, config) for p in sorted(set(patients))}
