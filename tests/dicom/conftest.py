"""Fixtures of the DICOM reading tests; the series writers live in dicom_series.py."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from dicom_series import WrittenSeries, write_series

from breastflow.store.local_s3 import local_s3


@pytest.fixture
def make_series(tmp_path: Path):
    """Factory fixture: ``make_series(**write_series kwargs)`` under ``tmp_path/dicom``."""

    def factory(**kwargs: object) -> WrittenSeries:
        return write_series(tmp_path / "dicom", **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 endpoint (moto's threaded server) on 127.0.0.1."""
    with local_s3(set_env=False) as s3:
        yield s3.endpoint_url


@pytest.fixture
def s3_dicom(s3_endpoint, monkeypatch):
    """Upload files to a fresh bucket; returns ``(s3 URL prefix, storage_options)``."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_endpoint},
               "skip_instance_cache": True}
    counter = {"n": 0}

    def upload(paths: list[Path]) -> tuple[str, dict]:
        counter["n"] += 1
        fs = s3fs.S3FileSystem(**options)
        bucket = f"landing-{counter['n']}-{random.randrange(10**6)}"
        fs.mkdir(bucket)
        for path in paths:
            fs.put_file(str(path), f"{bucket}/scanner/{path.parent.name}/{path.name}")
        return f"s3://{bucket}/scanner/", options

    return upload
