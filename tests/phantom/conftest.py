"""Shared phantom cohorts (written once per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import PhantomConfig, TransferSyntax

COHORT_SEED = 11
COHORT_STUDIES = 16


@pytest.fixture(scope="session")
def mri_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 tiny MRI studies cycling through all four transfer syntaxes, half with T2."""
    out = tmp_path_factory.mktemp("mri_cohort")
    config = PhantomConfig(studies=COHORT_STUDIES, seed=COHORT_SEED, t2_fraction=0.5,
                           transfer_syntaxes=tuple(TransferSyntax))
    write_cohort(out, config)
    return out
