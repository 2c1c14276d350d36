"""Fixtures: a real (temporary) Prefect API, a phantom cohort with PHI, an S3 endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study
from breastflow.store.local_s3 import local_s3

KEY = "f" * 16 + "0123456789abcdef-flow-tests"


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("BREASTFLOW_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="session")
def flow_cohort(tmp_path_factory) -> tuple[Path, list[str]]:
    """One tiny study; returns (dicom folder, PHI values written)."""
    root = tmp_path_factory.mktemp("flowcohort")
    result = write_mri_study(root, 0, PhantomConfig(studies=1, seed=9, t2_fraction=0.0), TransferSyntax.EXPLICIT_LE)
    phi = [v for v in result.phi_values if len(v) >= 8] + [str(result.study["study_instance_uid"])]
    return root / "dicom", phi


@pytest.fixture(scope="session")
def s3_server():
    with local_s3(set_env=False) as server:
        yield server
