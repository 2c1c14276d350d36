"""Small runs ingest in this process (no LocalCluster start); Dask stays for large, forced and --scheduler runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from breastflow.ingest import pipeline
from breastflow.ingest.config import ClusterConfig, Executor, IngestConfig
from breastflow.ingest.in_process import InProcessClient, call_with_retries
from breastflow.ingest.pipeline import choose_executor, run_ingest
from breastflow.ingest.report import ExitStatus, Outcome
from breastflow.store import layout
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation

HASH_COLUMNS = ["study", "series", "content_hash", "z", "y", "x", "split", "source_series"]


def _config(executor: Executor, **cluster) -> IngestConfig:
    return IngestConfig(cluster=ClusterConfig(executor=executor, **cluster))


def _catalog(store: Path):
    return read_catalog(StoreLocation.from_url(str(store))).sort_values(["study", "series"]).reset_index(drop=True)


@pytest.fixture
def no_cluster(monkeypatch):
    """Fail the test if the run opens a Dask client or LocalCluster."""
    def refuse(*args, **kwargs):
        raise AssertionError("a small run must not start a Dask cluster")

    monkeypatch.setattr(pipeline, "dask_client", refuse)
    monkeypatch.setattr("distributed.LocalCluster.__init__", refuse)


@pytest.mark.parametrize(("executor", "scheduler", "n_files", "n_bytes", "has_client", "expected"), [
    (Executor.AUTO, None, 10, 10_000, False, Executor.IN_PROCESS),
    (Executor.AUTO, None, 10, None, False, Executor.IN_PROCESS),  # remote source: by file count
    (Executor.AUTO, None, 10_001, 10_000, False, Executor.DASK),  # too many files
    (Executor.AUTO, None, 10, 4 * 10**9 + 1, False, Executor.DASK),  # too many bytes
    (Executor.AUTO, "tcp://127.0.0.1:8786", 10, 10_000, False, Executor.DASK),  # --scheduler
    (Executor.AUTO, None, 10, 10_000, True, Executor.DASK),  # a client handed in
    (Executor.DASK, None, 10, 10_000, False, Executor.DASK),  # --cluster
    (Executor.IN_PROCESS, None, 10**6, 10**12, False, Executor.IN_PROCESS),  # --in-process
])
def test_choose_executor_case_table(executor, scheduler, n_files, n_bytes, has_client, expected):
    cluster = ClusterConfig(executor=executor, scheduler=scheduler)
    assert choose_executor(cluster, n_files, n_bytes, has_client) is expected


def test_in_process_with_a_scheduler_is_refused():
    with pytest.raises(ValueError, match="scheduler"):
        ClusterConfig(executor=Executor.IN_PROCESS, scheduler="tcp://127.0.0.1:8786")


def test_small_run_is_in_process_without_a_cluster(tmp_path, source, no_cluster):
    seen = []
    report = run_ingest(str(source), str(tmp_path / "store"), progress=seen.append)
    assert report.executor == "in-process" and report.summary()["executor"] == "in-process"
    assert report.exit_status() is ExitStatus.SUCCESS and report.new
    assert sorted((o.study, o.series) for o in seen) == sorted((o.study, o.series) for o in report.new)
    stored = json.loads((tmp_path / "store" / layout.report_file(report.run_id)).read_text())
    assert stored["executor"] == "in-process"


def test_threshold_sends_a_larger_run_to_dask(tmp_path, source):
    report = run_ingest(str(source), str(tmp_path / "store"),
                        _config(Executor.AUTO, in_process_max_files=1, workers=1, processes=False))
    assert report.executor == "dask" and report.exit_status() is ExitStatus.SUCCESS


def test_same_stored_content_in_process_and_on_dask(tmp_path, source):
    local = run_ingest(str(source), str(tmp_path / "local"), _config(Executor.IN_PROCESS))
    dask = run_ingest(str(source), str(tmp_path / "dask"), _config(Executor.DASK, workers=1, processes=False))
    assert (local.executor, dask.executor) == ("in-process", "dask")
    got, want = _catalog(tmp_path / "local"), _catalog(tmp_path / "dask")
    assert len(got) == len(local.new) > 0
    assert got[HASH_COLUMNS].equals(want[HASH_COLUMNS])


def test_scheduler_address_runs_on_that_cluster(tmp_path, source):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        report = run_ingest(str(source), str(tmp_path / "store"),
                            IngestConfig(cluster=ClusterConfig(scheduler=cluster.scheduler_address)))
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert report.executor == "dask" and report.exit_status() is ExitStatus.SUCCESS
    assert "probe_headers" in prefixes and any(p.startswith("ingest") for p in prefixes)  # probes and series


def test_failing_series_in_process_is_isolated_after_retries(tmp_path, source, monkeypatch, no_cluster):
    real = pipeline.ingest_series
    calls: dict[str, int] = {}
    victim: list[str] = []

    def flaky(job, *args):
        calls[job.key] = calls.get(job.key, 0) + 1
        if not victim:
            victim.append(job.key)
        if job.key == victim[0]:
            raise OSError("store unreachable")
        return real(job, *args)

    monkeypatch.setattr(pipeline, "ingest_series", flaky)
    seen = []
    report = run_ingest(str(source), str(tmp_path / "store"), IngestConfig(retries=2), progress=seen.append)
    assert report.executor == "in-process"
    assert [(o.reason, f"ingest-{o.study}-{o.series}") for o in report.failed] == [("storage-error", victim[0])]
    assert calls[victim[0]] == 3  # first try + 2 retries, as Dask ``retries=2``
    assert report.new and all(calls[f"ingest-{o.study}-{o.series}"] == 1 for o in report.new)
    assert report.exit_status() is ExitStatus.PARTIAL
    assert len(seen) == len(report.new) + len(report.failed)


def test_a_passing_storage_error_is_retried_in_process(tmp_path, source, monkeypatch):
    real = pipeline.ingest_series
    failed_once: set[str] = set()

    def flaky_once(job, *args):
        if job.key not in failed_once:
            failed_once.add(job.key)
            raise ConnectionError("reset by peer")
        return real(job, *args)

    monkeypatch.setattr(pipeline, "ingest_series", flaky_once)
    report = run_ingest(str(source), str(tmp_path / "store"), IngestConfig(retries=1))
    assert report.executor == "in-process"
    assert report.new and not report.failed and all(o.outcome is not Outcome.FAILED for o in report.outcomes)


def test_in_process_client_maps_in_order_and_retries():
    attempts = []

    def sometimes(value: int) -> int:
        attempts.append(value)
        if value == 2 and attempts.count(2) < 2:
            raise TimeoutError("once")
        return value * 10

    with InProcessClient(threads=2) as client:
        assert client.gather(client.map(sometimes, [1, 2, 3], retries=1)) == [10, 20, 30]
    assert attempts.count(2) == 2
    with pytest.raises(TimeoutError):
        call_with_retries(lambda: (_ for _ in ()).throw(TimeoutError("always")), 2)
    with pytest.raises(ValueError, match="threads"):
        InProcessClient(threads=0)


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    code = "import sys; from breastflow.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, "ingest", *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.mark.integration
def test_cli_forced_cluster_closes_quietly_and_small_run_says_in_process(tmp_path, source):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    forced = _cli([str(source), str(tmp_path / "dask"), "--cluster", "--workers", "2", "--quiet",
                   "--report", str(tmp_path / "dask.json")], env)
    assert forced.returncode == 0, forced.stderr
    for noise in ("Traceback", "CommClosedError", "Stream is closed"):
        assert noise not in forced.stderr, forced.stderr
    assert json.loads((tmp_path / "dask.json").read_text())["executor"] == "dask"
    small = _cli([str(source), str(tmp_path / "local"), "--quiet", "--report", str(tmp_path / "local.json")], env)
    assert small.returncode == 0, small.stderr
    assert json.loads((tmp_path / "local.json").read_text())["executor"] == "in-process"
    assert _catalog(tmp_path / "local")[HASH_COLUMNS].equals(_catalog(tmp_path / "dask")[HASH_COLUMNS])
    both = _cli([str(source), str(tmp_path / "x"), "--in-process", "--scheduler", "tcp://127.0.0.1:1"], env)
    assert both.returncode == 2 and "exclude each other" in both.stderr


@pytest.mark.integration
def test_s3_source_and_store_in_process_equal_local(tmp_path, s3_env, source, cohort, no_cluster):
    from ingest_helpers import new_bucket

    landing, store_bucket = new_bucket(s3_env), new_bucket(s3_env)
    for extra in cohort.studies[1:]:  # one study keeps moto fast
        import shutil

        shutil.rmtree(source / extra["study_id"])
    StoreLocation.from_url(f"s3://{landing}").filesystem().put(str(source) + "/", f"{landing}/a/", recursive=True)
    remote = run_ingest(f"s3://{landing}/a", f"s3://{store_bucket}/store")
    local = run_ingest(str(source), str(tmp_path / "store"))
    assert (remote.executor, local.executor) == ("in-process", "in-process")
    assert remote.exit_status() is ExitStatus.SUCCESS and len(remote.new) == len(local.new) > 0
    got = read_catalog(StoreLocation.from_url(f"s3://{store_bucket}/store")).sort_values(["study", "series"])
    assert got.reset_index(drop=True)[HASH_COLUMNS].equals(_catalog(tmp_path / "store")[HASH_COLUMNS])


def test_quiet_shutdown_silences_dask_loggers_and_restores_them(caplog):
    import logging

    worker_log = logging.getLogger("distributed.worker")
    before = logging.getLogger("distributed").level
    with caplog.at_level(logging.DEBUG, logger="distributed.worker"):
        with pipeline.quiet_shutdown():
            worker_log.error("Failed to communicate with scheduler during heartbeat.")
            logging.getLogger("distributed.core").error("CommClosedError: Stream is closed")
        assert not [r for r in caplog.records if r.name.startswith("distributed")]
        assert logging.getLogger("distributed").level == before
        worker_log.error("after the close")
    assert [r.getMessage() for r in caplog.records] == ["after the close"]
