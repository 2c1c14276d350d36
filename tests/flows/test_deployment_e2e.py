"""The scheduled ingest deployment of ``deployments/prefect.yaml`` on a real Prefect server and worker.

What a site does, step by step, all on 127.0.0.1 with a throw-away ``PREFECT_HOME``:
``prefect server start`` -> ``prefect work-pool create --type process`` ->
``prefect deploy --all --prefect-file deployments/prefect.yaml`` -> the server's
scheduler creates the cron's runs -> ``prefect deployment run --param ...`` ->
``infra/start_worker.sh --run-once`` runs it (a flow-run subprocess whose Dask
workers all talk to the real API). Run 1: one study landed, the pseudonym key
from the worker's environment, a Dask LocalCluster. Run 2: a second study
landed, the key from the Secret block the deployment names by default (none in
the worker's environment), the Dask cluster of ``infra/start_dask.sh``. Run 3:
nothing new.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timezone
from pathlib import Path
from uuid import UUID

import pydicom
import pytest
import yaml
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings

from breastflow.phantom.cohort import PHI_FILE, write_cohort
from breastflow.phantom.config import PhantomConfig
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = ROOT / "deployments" / "prefect.yaml"
PREFECT = [sys.executable, "-m", "prefect"]
SERVER_START_S = 120
WORKER_RUN_S = 300
SUMMARY_KEY = "breastflow-ingest-summary"


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """No in-process test harness here: this module talks to its own real server."""
    yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process started in its own session, with all its children."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _spec() -> dict:
    return yaml.safe_load(PREFECT_FILE.read_text())


class Site:
    """A running Prefect server and the environment its CLI calls and workers use."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BREASTFLOW_"))}
        self.env = base | {"PREFECT_HOME": str(home), "PREFECT_API_URL": self.url,
                           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "BREASTFLOW_REPO": str(ROOT)}

    def cli(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([*PREFECT, "--no-prompt", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def call(self, coro_fn, *args):  # noqa: ANN001, ANN201 - thin helper around one client coroutine
        async def go():  # noqa: ANN202
            async with get_client() as client:
                return await coro_fn(client, *args)

        with temporary_settings(updates={PREFECT_API_URL: self.url}):
            return asyncio.run(go())

    def run_worker(self, log: Path, env: dict[str, str]) -> int:
        """``infra/start_worker.sh --run-once``: picks up the due runs, waits for them, exits."""
        with log.open("w") as out:
            proc = subprocess.Popen(["bash", str(ROOT / "infra" / "start_worker.sh"), "--run-once"], cwd=self.home,
                                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                return proc.wait(timeout=WORKER_RUN_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker did not finish within {WORKER_RUN_S} s; log: {log}")
            finally:
                _stop(proc)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    home = tmp_path_factory.mktemp("prefect_home")
    port = _free_port()
    site = Site(home, port)
    server_env = {k: v for k, v in site.env.items() if k != "PREFECT_API_URL"} | {
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1", "PREFECT_SERVER_UI_ENABLED": "false"}
    log = (home / "server.log").open("w")
    server = subprocess.Popen([*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=home, env=server_env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            assert server.poll() is None, f"prefect server exited; see {home / 'server.log'}"
            try:
                with urllib.request.urlopen(f"{site.url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"prefect server not healthy after {SERVER_START_S} s"
            time.sleep(0.5)
        yield site
    finally:
        _stop(server)
        log.close()


@pytest.fixture(scope="module")
def dask_scheduler(site, tmp_path_factory) -> str:
    """``infra/start_dask.sh 1 PORT``: a scheduler and one worker, reporting to the site's server."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("dask") / "dask.log").open("w")
    proc = subprocess.Popen(["bash", str(ROOT / "infra" / "start_dask.sh"), "1", str(port)], cwd=site.home,
                            env=site.env | {"DASK_DASHBOARD_ADDRESS": "127.0.0.1:0"}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"infra/start_dask.sh exited; see {log.name}"
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(1, timeout=60)
                break
            except OSError:
                assert time.monotonic() < deadline, f"no Dask scheduler at {address} after 60 s"
                time.sleep(0.5)
        yield address
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Two phantom studies (PH0000, PH0001); the test lands them one at a time."""
    root = tmp_path_factory.mktemp("phantom_cohort")
    write_cohort(root, PhantomConfig(studies=2, seed=11, t2_fraction=1.0))
    return root


def _series_uids(dicom: Path) -> tuple[set[str], set[str]]:
    """(PatientID values, SeriesInstanceUID values), read straight from the landing folder."""
    patients, series = set(), set()
    for path in dicom.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        patients.add(str(ds.PatientID))
        series.add(str(ds.SeriesInstanceUID))
    return patients, series


def _phi_values(cohort: Path) -> list[str]:
    """Every PHI string the phantom wrote (phi.json), long enough not to match by chance."""
    values: set[str] = set()
    for study in json.loads((cohort / PHI_FILE).read_text()).values():
        values.update(study["phi_values"])
        for value in study["attributes"].values():
            values.update(value if isinstance(value, list) else [value])
    return sorted(v for v in values if len(v) >= 6)


def _hmac_pseudonym(prefix: str, kind: str, value: str, key: str) -> str:
    return f"{prefix}-" + hmac.new(key.encode(), f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]


async def _deployment(client, name: str):  # noqa: ANN001, ANN202
    return await client.read_deployment_by_name(name)


async def _scheduled_runs(client, deployment_id: UUID):  # noqa: ANN001, ANN202
    return await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))


async def _flow_run(client, run_id: UUID):  # noqa: ANN001, ANN202
    return await client.read_flow_run(run_id)


async def _summary_markdown(client, run_id: UUID) -> str:  # noqa: ANN001
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return "\n".join(str(a.data) for a in artifacts if a.key == SUMMARY_KEY)


async def _all_text(client, run_id: UUID) -> str:  # noqa: ANN001
    """The run's artifacts (all keys) and every log line the API holds for it."""
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    parts = [json.dumps(a.data, default=str) + str(a.description) for a in artifacts]
    offset = 0
    while batch := await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                                          limit=200, offset=offset):
        parts += [log.message for log in batch]
        offset += len(batch)
    return "\n".join(parts)


def _counts(markdown: str) -> dict[str, int]:
    """The first summary table of the run's markdown artifact as {column: value}."""
    lines = markdown.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| new |"))
    names = [c.strip() for c in lines[header].strip("|").split("|")]
    values = [c.strip() for c in lines[header + 2].strip("|").split("|")]
    return {n: int(v) for n, v in zip(names, values, strict=True) if v.isdigit()}


def _check_store(store: Path, landing: Path, key: str) -> int:
    """The catalog holds exactly the landed series, under the keyed pseudonyms; returns their number."""
    patients, series_uids = _series_uids(landing)
    catalog = read_catalog(StoreLocation.from_url(str(store)))
    assert len(catalog) == len(series_uids) >= 5
    assert set(catalog["source_series"]) == {_hmac_pseudonym("ser", "series", s, key) for s in series_uids}
    assert set(catalog["patient"]) == {_hmac_pseudonym("pat", "patient", p, key) for p in patients}
    return len(series_uids)


def _trigger(site: Site, name: str, source: Path, store: Path, *extra: str) -> UUID:
    out = site.cli("deployment", "run", name, "--param", f"source={source}", "--param", f"store={store}", *extra)
    match = re.search(r"UUID: ([0-9a-f-]{36})", out)
    assert match, out
    return UUID(match.group(1))


def test_scheduled_deployment_runs_on_a_real_server_and_worker(site, cohort, dask_scheduler, tmp_path):
    spec = _spec()
    pool = spec["definitions"]["work_pools"]["ingest_pool"]
    gpu_pool = spec["definitions"]["work_pools"]["gpu_pool"]
    site.cli("work-pool", "create", pool["name"], "--type", "process")
    site.cli("work-pool", "create", gpu_pool["name"], "--type", "process")
    site.cli("deploy", "--all", "--prefect-file", str(PREFECT_FILE), timeout=180)

    # the training deployment: on the GPU pool, no schedule (started from the UI), the form's defaults
    train = site.call(_deployment, "breastflow-train/train-pix2pixhd")
    assert (train.work_pool_name, train.work_queue_name) == (gpu_pool["name"], gpu_pool["work_queue_name"])
    assert not train.schedules and train.parameters["params"]["model"] == "pix2pixhd"
    assert "params" in train.parameter_openapi_schema["properties"]

    # the cron schedules are registered as declared, and the server's scheduler acts on them
    by_name = {d["name"]: d for d in spec["deployments"] if d["entrypoint"].startswith("flows/ingest.py")}
    active = [n for n, d in by_name.items() if d["schedules"][0]["active"]]
    assert active, "prefect.yaml declares no active schedule"
    deployments = {n: site.call(_deployment, f"breastflow-ingest/{n}") for n in by_name}
    for name, deployment in deployments.items():
        declared = by_name[name]["schedules"][0]
        (registered,) = deployment.schedules
        assert (registered.schedule.cron, registered.schedule.timezone, registered.active) == (
            declared["cron"], declared["timezone"], declared["active"])
        assert deployment.work_pool_name == pool["name"] and deployment.work_queue_name == pool["work_queue_name"]
        assert "BREASTFLOW_PSEUDONYM_KEY" not in json.dumps(deployment.job_variables or {})
    deadline = time.monotonic() + 60
    while not (scheduled := site.call(_scheduled_runs, deployments[active[0]].id)):
        assert time.monotonic() < deadline, "the server's scheduler created no runs for the active cron"
        time.sleep(1)
    minute, hour = by_name[active[0]]["schedules"][0]["cron"].split()[:2]
    for run in scheduled:
        assert run.auto_scheduled and run.expected_start_time.tzinfo is not None
        start = run.expected_start_time.astimezone(timezone.utc)
        assert (start.minute, start.hour) == (int(minute), int(hour))
    for name in set(by_name) - set(active):
        assert not site.call(_scheduled_runs, deployments[name].id), f"inactive schedule of {name} made runs"

    # run 1: key from the worker's environment; the landing zone holds one study
    landing, store = tmp_path / "landing", tmp_path / "store"
    shutil.copytree(cohort / "dicom" / "PH0000", landing / "PH0000")
    key = secrets.token_hex(32)
    nightly = f"breastflow-ingest/{active[0]}"
    first = _trigger(site, nightly, landing, store, "--param", "key_secret_block=null")
    rc = site.run_worker(tmp_path / "worker1.log", site.env | {"BREASTFLOW_PSEUDONYM_KEY": key})
    state = site.call(_flow_run, first).state
    assert rc == 0 and state.type is StateType.COMPLETED, (state, (tmp_path / "worker1.log").read_text()[-3000:])

    _check_store(store, landing, key)
    n_first = len(_series_uids(landing)[1])
    counts = _counts(site.call(_summary_markdown, first))
    assert (counts["new"], counts["skipped"], counts["exit"]) == (n_first, 0, 0)

    # run 2: a new study has landed; deployment defaults (the key from the Secret block the
    # deployment names, none in the worker's environment) on infra/start_dask.sh's cluster
    shutil.copytree(cohort / "dicom" / "PH0001", landing / "PH0001")
    block_name = by_name[active[0]]["parameters"]["key_secret_block"]
    with temporary_settings(updates={PREFECT_API_URL: site.url}):
        Secret(value=key).save(block_name, overwrite=True)
    second = _trigger(site, nightly, landing, store)
    rc = site.run_worker(tmp_path / "worker2.log", site.env | {"BREASTFLOW_DASK_SCHEDULER": dask_scheduler})
    state = site.call(_flow_run, second).state
    worker_log = (tmp_path / "worker2.log").read_text()
    assert rc == 0 and state.type is StateType.COMPLETED, (state, worker_log[-3000:])
    assert f"Connecting to an existing Dask cluster at {dask_scheduler}" in worker_log
    n_all = _check_store(store, landing, key)
    counts = _counts(site.call(_summary_markdown, second))
    assert (counts["new"], counts["skipped"], counts["exit"]) == (n_all - n_first, n_first, 0)

    # run 3: nothing new
    third = _trigger(site, nightly, landing, store)
    rc = site.run_worker(tmp_path / "worker3.log", site.env)
    state = site.call(_flow_run, third).state
    assert rc == 0 and state.type is StateType.COMPLETED, (state, (tmp_path / "worker3.log").read_text()[-3000:])
    counts = _counts(site.call(_summary_markdown, third))
    assert (counts["new"], counts["skipped"], counts["exit"]) == (0, n_all, 0)
    assert _check_store(store, landing, key) == n_all

    # no PHI in the runs' artifacts, API logs or the workers' output (which holds the flow runs' output)
    texts = [site.call(_all_text, run) for run in (first, second, third)]
    texts += [(tmp_path / f"worker{i}.log").read_text() for i in (1, 2, 3)]
    assert SUMMARY_KEY in texts[0] or "| new |" in texts[0]
    patients, series_uids = _series_uids(landing)
    phi = _phi_values(cohort) + sorted(series_uids) + sorted(patients)
    for text in texts:
        leaked = [value for value in phi if value in text]
        assert not leaked, f"PHI in Prefect artifacts/logs: {len(leaked)} values"
        assert key not in text
