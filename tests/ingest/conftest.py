"""Fixtures: a small phantom DCE-MRI cohort with PHI, a Dask LocalCluster, an S3 endpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ingest_helpers import KEY, Cohort, write_cohort

from breastflow.phantom.config import TransferSyntax
from breastflow.store.local_s3 import local_s3

@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Cohort:
    """Two tiny studies: one uncompressed, one JPEG-LS lossless."""
    return write_cohort(tmp_path_factory.mktemp("cohort"), [0, 1],
                        [TransferSyntax.EXPLICIT_LE, TransferSyntax.JPEGLS_LOSSLESS])


@pytest.fixture(scope="session")
def extra_study(tmp_path_factory) -> Cohort:
    """A third study, for incremental ingest."""
    return write_cohort(tmp_path_factory.mktemp("extra"), [2], [TransferSyntax.EXPLICIT_LE])


@pytest.fixture
def source(tmp_path, cohort) -> Path:
    """A private, writable copy of the cohort's DICOM folder."""
    target = tmp_path / "landing"
    shutil.copytree(cohort.dicom, target)
    return target


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("BREASTFLOW_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="session")
def dask_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server():
    with local_s3(set_env=False) as server:
        yield server


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server
