"""A worker process SIGKILLed mid-series: nothing half-visible, the next run completes it identically."""

from __future__ import annotations

import dask
import pytest
from distributed import Client, LocalCluster

from breastflow.ingest.config import IngestConfig
from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus, Outcome
from breastflow.store import layout
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import ArrayLayout, FAULT_ENV, FAULT_ONCE_ENV

pytestmark = pytest.mark.integration


def test_killed_worker_leaves_nothing_visible_and_next_run_completes(tmp_path, source, monkeypatch):
    config = IngestConfig(array_layout=ArrayLayout(shard_slices=8))
    clean = tmp_path / "clean"
    crashed = tmp_path / "crashed"
    monkeypatch.setenv(FAULT_ENV, "1")
    monkeypatch.setenv(FAULT_ONCE_ENV, str(tmp_path / "fault-fired"))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        first = run_ingest(str(source), str(crashed), config, client=client)
        assert (tmp_path / "fault-fired").exists()
        # the scheduler fails every task that was on the dead worker (running or queued)
        assert first.failed and {o.reason for o in first.failed} == {"worker-lost"}
        assert first.exit_status() is ExitStatus.PARTIAL
        lost = {(o.study, o.series) for o in first.failed}
        loc = StoreLocation.from_url(str(crashed))
        # a half-written array exists, but no lost series is committed or in the catalog
        assert any((crashed / layout.series_array(*key) / "zarr.json").exists() for key in lost)
        assert not any((crashed / layout.commit_marker(*key)).exists() for key in lost)
        catalog = read_catalog(loc)
        assert not lost & set(zip(catalog.study, catalog.series, strict=True))
        second = run_ingest(str(source), str(crashed), config, client=client)
        assert {(o.study, o.series) for o in second.new} == lost
        assert second.exit_status() is ExitStatus.SUCCESS
        monkeypatch.delenv(FAULT_ENV)
        reference = run_ingest(str(source), str(clean), config, client=client)
    assert all(o.outcome is Outcome.NEW for o in reference.outcomes)
    got = read_catalog(StoreLocation.from_url(str(crashed)))
    want = read_catalog(StoreLocation.from_url(str(clean)))
    columns = ["study", "series", "content_hash", "split", "z", "y", "x", "source_series"]
    assert got[columns].equals(want[columns])
