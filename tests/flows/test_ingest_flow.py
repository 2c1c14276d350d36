"""The ingest flow under a real Prefect API with prefect-dask's DaskTaskRunner."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from prefect.client.orchestration import get_client

from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from flows.ingest import dask_task_runner, ingest_flow

pytestmark = pytest.mark.integration


def _flow(workers: int = 2):
    # threads: workers share this process's Prefect API (no per-worker ephemeral server)
    return ingest_flow.with_options(task_runner=dask_task_runner(workers=workers, processes=False))


async def _max_run_count(flow_run_name_prefix: str = "") -> int:
    async with get_client() as client:
        runs = await client.read_task_runs()
        return max((r.run_count for r in runs if r.name.startswith("plan_task")), default=0)


async def _artifacts():
    async with get_client() as client:
        return await client.read_artifacts()


def test_flow_ingests_publishes_phi_free_artifact_and_is_idempotent(tmp_path, flow_cohort):
    dicom, phi = flow_cohort
    store = str(tmp_path / "store")
    summary = _flow()(str(dicom), store)
    assert summary["new"] == 5 and summary["exit_status"] == 0
    assert len(read_catalog(StoreLocation.from_url(store))) == 5
    again = _flow()(str(dicom), store)
    assert (again["new"], again["skipped"]) == (0, 5)
    artifacts = [a for a in asyncio.run(_artifacts()) if a.key == "breastflow-ingest-summary"]
    assert artifacts
    text = "\n".join(str(a.data) for a in artifacts)
    assert "| new |" in text
    for value in phi + [str(dicom)]:
        assert value not in text


@pytest.mark.slow
def test_flow_survives_a_storage_endpoint_restart(tmp_path, flow_cohort, s3_server, monkeypatch):
    dicom, _ = flow_cohort
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    # fail fast inside s3fs/botocore, so that the outage reaches Prefect's task retries
    monkeypatch.setenv("BREASTFLOW_STORAGE_OPTIONS",
                       '{"config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}}')
    bucket = f"flow-{uuid.uuid4().hex[:10]}"
    s3_server.make_bucket(bucket)
    s3_server.stop()  # storage outage when the run starts
    restarted = threading.Event()

    def bring_back() -> None:
        time.sleep(3.0)
        s3_server.start()
        restarted.set()

    threading.Thread(target=bring_back, daemon=True).start()
    started = time.perf_counter()
    summary = _flow()(str(dicom), f"s3://{bucket}/store")
    assert restarted.is_set() and time.perf_counter() - started > 3.0
    assert summary["new"] == 5 and summary["exit_status"] == 0
    assert len(read_catalog(StoreLocation.from_url(f"s3://{bucket}/store"))) == 5
    assert asyncio.run(_max_run_count()) > 1  # the planning task was retried by Prefect
