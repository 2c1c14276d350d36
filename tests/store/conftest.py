"""Fixtures: a real S3 endpoint (moto server on 127.0.0.1) reached through s3fs."""

from __future__ import annotations

import uuid

import pytest

from breastflow.store.local_s3 import local_s3


@pytest.fixture(scope="session")
def s3_server():
    with local_s3(set_env=False) as server:
        yield server


@pytest.fixture
def s3_store_url(s3_server, monkeypatch) -> str:
    """A fresh ``s3://`` store URL; the environment points s3fs at the local endpoint."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    bucket = f"store-{uuid.uuid4().hex[:12]}"
    s3_server.make_bucket(bucket)
    return f"s3://{bucket}/bf"
