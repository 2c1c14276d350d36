"""Ingest from an s3:// landing zone into an s3:// store on a real (moto) S3 endpoint."""

from __future__ import annotations

import shutil

import pytest
from ingest_helpers import assert_no_phi_in, new_bucket

from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation

pytestmark = pytest.mark.integration


def test_s3_to_s3_equals_local_and_holds_no_phi(tmp_path, s3_env, source, cohort, dask_client):
    landing, store_bucket = new_bucket(s3_env), new_bucket(s3_env)
    for extra in cohort.studies[1:]:  # one study keeps this test fast (moto handles ~100 objects/s)
        shutil.rmtree(source / extra["study_id"])
    location = StoreLocation.from_url(f"s3://{landing}")
    location.filesystem().put(str(source) + "/", f"{landing}/scanner-a/", recursive=True)
    s3_report = run_ingest(f"s3://{landing}/scanner-a", f"s3://{store_bucket}/store", client=dask_client)
    assert s3_report.exit_status() is ExitStatus.SUCCESS
    local_report = run_ingest(str(source), str(tmp_path / "store"), client=dask_client)
    s3_catalog = read_catalog(StoreLocation.from_url(f"s3://{store_bucket}/store"))
    local_catalog = read_catalog(StoreLocation.from_url(str(tmp_path / "store")))
    assert len(s3_catalog) == len(local_report.new) > 0
    columns = ["study", "series", "content_hash", "z", "y", "x", "split"]
    assert s3_catalog[columns].equals(local_catalog[columns])
    fs = StoreLocation.from_url(f"s3://{store_bucket}").filesystem()
    keys = fs.find(store_bucket)
    assert any("/c/" in key for key in keys)
    assert_no_phi_in(fs.cat(keys), cohort.phi_values)
    # second run against S3 is idempotent too
    again = run_ingest(f"s3://{landing}/scanner-a", f"s3://{store_bucket}/store", client=dask_client)
    assert (len(again.new), len(again.skipped)) == (0, len(s3_report.new))
