"""Run an ingest in this process or over a Dask cluster: plan, ingest series in parallel, finalize.

``run_ingest`` is what the CLI calls. Small runs (``Executor.AUTO``, at most
``ClusterConfig.in_process_max_files`` files and ``in_process_max_bytes``
bytes) run on threads of this process, because starting and stopping a
LocalCluster costs several seconds, more than ingesting a study; the decision
is taken from the discovered files, before any header is probed, and a
cluster is only started for a large run, a forced ``Executor.DASK`` or a
``scheduler`` address. Both executors run the same task functions through
:func:`_submit_all` and :func:`_gather`. The Prefect flow composes the same
stages (:func:`plan_ingest`, :func:`ingest_series`, then
:func:`~breastflow.ingest.annotation_job.ingest_annotation` for annotated studies
once their series are in, :func:`finalize_ingest`) as tasks on a DaskTaskRunner.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from breastflow.ingest.annotation_job import AnnotationJob, ingest_annotation
from breastflow.ingest.annotations import AnnotationOptions, AnnotationSource, load_annotation_source
from breastflow.ingest.config import ClusterConfig, Executor, IngestConfig
from breastflow.ingest.in_process import InProcessClient
from breastflow.ingest.plan import IngestPlan, SeriesJob, plan_ingest
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import IngestReport, Outcome, SeriesOutcome
from breastflow.ingest.series import ingest_series
from breastflow.store import layout
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.store.splits import SplitConfig
from breastflow.store.zarr_io import open_root

Progress = Callable[[SeriesOutcome], None]


def new_run_id() -> str:
    """A PHI-free, sortable run id (UTC time + random suffix)."""
    return time.strftime("%Y%m%dt%H%M%Sz", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def ensure_split_seed(loc: StoreLocation, splits: SplitConfig) -> None:
    """Record the split seed in the store on first use; refuse a different one later.

    Raises:
        ValueError: the store was split with another seed (changing it would move
            patients between train and test).
    """
    root = open_root(loc)
    meta = dict(root.attrs.get(layout.ROOT_ATTR, {}))
    seed = meta.get("split_seed")
    if seed is None:
        meta["split_seed"] = splits.seed
        root.attrs[layout.ROOT_ATTR] = meta
    elif int(seed) != splits.seed:
        raise ValueError(f"store {loc.url} is split with seed {seed}; got --seed {splits.seed}. "
                         "Use the store's seed (changing it would move patients between splits).")


def failed_outcome(job: SeriesJob | AnnotationJob, err: BaseException) -> SeriesOutcome:
    """The outcome of a series (or annotation) task that failed for a reason other than its input."""
    reason = "worker-lost" if type(err).__name__ == "KilledWorker" else "storage-error"
    return SeriesOutcome(outcome=Outcome.FAILED, study=job.study, series=job.series, reason=reason,
                         where=job.where, where_ref=job.where_ref,
                         message=f"{type(err).__name__}; the series is not committed and is retried next run")


def finalize_ingest(loc: StoreLocation, plan: IngestPlan, outcomes: list[SeriesOutcome], splits: SplitConfig,
                    run_id: str, seconds: float, executor: str = "") -> IngestReport:
    """Rebuild the catalog from the commit markers and write the PHI-free run report.

    Args:
        executor: where the series ran (``Executor`` value), recorded in the report.

    Returns:
        The report of the run (operator view available via ``to_operator_dict``).
    """
    report = IngestReport(run_id=run_id, outcomes=[*plan.outcomes, *outcomes], seconds=seconds, executor=executor)
    rebuild_catalog(loc, splits)
    payload = json.dumps(report.to_store_dict(), indent=1, sort_keys=True).encode()
    atomic_write_bytes(loc, layout.report_file(run_id), payload)
    return report


#: Loggers that report the expected end of connections while a LocalCluster shuts down
#: (worker heartbeats to a closed scheduler: ``CommClosedError``, "Stream is closed").
_SHUTDOWN_NOISE = ("distributed", "tornado", "asyncio")
#: Seconds to wait for the client and the LocalCluster to close.
CLOSE_TIMEOUT_S = 10


@contextmanager
def quiet_shutdown() -> Iterator[None]:
    """Silence the known shutdown noise of Dask's loggers in this process while a cluster closes."""
    loggers = _noise_loggers()
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _noise_loggers() -> list[logging.Logger]:
    """The Dask/tornado/asyncio loggers and every child with a level of its own (e.g. ``distributed.worker``)."""
    names = [name for name in list(logging.Logger.manager.loggerDict)
             if any(name == root or name.startswith(root + ".") for root in _SHUTDOWN_NOISE)]
    return [logging.getLogger(name) for name in sorted({*_SHUTDOWN_NOISE, *names})]


@contextmanager
def dask_client(cluster: ClusterConfig) -> Iterator[object]:
    """A Dask client on the given scheduler, or on a LocalCluster closed quietly afterwards.

    The client closes before the cluster, each with a timeout, and the
    connection-closed messages that workers and nannies log while the scheduler
    goes away are silenced, in this process and (by a call on each before the
    close) in the worker and nanny processes, so a successful run ends without tracebacks.
    """
    from distributed import Client, LocalCluster

    if cluster.scheduler:
        with Client(cluster.scheduler) as client:
            yield client
        return
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 makes glibc return every freed
    # slice buffer to the OS; decoding thousands of slices then costs more system
    # time than decoding (measured: ingest 12 s -> 9 s per study, docs/store.md).
    settings = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 1 << 30}
    with dask.config.set(settings):
        local = LocalCluster(n_workers=cluster.workers, threads_per_worker=cluster.threads_per_worker,
                             processes=cluster.processes, memory_limit=cluster.memory_limit,
                             dashboard_address=None)
        try:
            client = Client(local)
        except BaseException:
            with quiet_shutdown():
                local.close(timeout=CLOSE_TIMEOUT_S)
            raise
    try:
        yield client
    finally:
        with quiet_shutdown():
            try:
                _silence_cluster(client)
                client.close(timeout=CLOSE_TIMEOUT_S)
            finally:
                local.close(timeout=CLOSE_TIMEOUT_S)


def _silence_loggers() -> None:
    """Run on each worker and nanny before shutdown: only critical messages from here on."""
    for logger in _noise_loggers():
        logger.setLevel(logging.CRITICAL)


def _silence_cluster(client) -> None:  # noqa: ANN001 - distributed.Client
    """Silence the shutdown noise in the worker and nanny processes too (best effort)."""
    for nanny in (False, True):
        try:
            client.run(_silence_loggers, nanny=nanny, on_error="ignore")
        except Exception:  # noqa: BLE001 - a cluster already going away needs no silencing
            pass


def _local_bytes(paths: list[str], limit: int) -> int | None:
    """Total size of local ``paths``, stopping once over ``limit``; ``None`` for remote sources."""
    if any("://" in p and not p.startswith("file://") for p in paths):
        return None
    total = 0
    for path in paths:
        total += os.path.getsize(path.removeprefix("file://"))
        if total > limit:
            break
    return total


def choose_executor(cluster: ClusterConfig, n_files: int, n_bytes: int | None, has_client: bool = False
                    ) -> Executor:
    """Where a run with ``n_files`` files (``n_bytes`` bytes, ``None`` if unknown) does its work.

    Args:
        cluster: the executor setting and the ``AUTO`` thresholds.
        n_files, n_bytes: the planned work (discovered files).
        has_client: a Dask client was handed in (always used).

    Returns:
        ``Executor.IN_PROCESS`` or ``Executor.DASK``.
    """
    if cluster.executor is not Executor.AUTO:
        return cluster.executor
    if has_client or cluster.scheduler:
        return Executor.DASK
    small = n_files <= cluster.in_process_max_files and (n_bytes is None or n_bytes <= cluster.in_process_max_bytes)
    return Executor.IN_PROCESS if small else Executor.DASK


class _Executors:
    """Decides the executor once, from the first look at the planned work, and opens it then.

    Args:
        config: the run's configuration.
        client: a Dask client handed in by the caller, or ``None``.
        stack: closes what is opened here (the in-process pool or the LocalCluster).
    """

    def __init__(self, config: IngestConfig, client: object | None, stack: ExitStack) -> None:
        self.config = config
        self.executor: Executor | None = None
        self._client = client
        self._stack = stack

    def open(self, paths: list[str]) -> object:
        """The client to run on; the first call decides from ``paths`` (discovered files)."""
        if self.executor is None:
            cluster = self.config.cluster
            n_bytes = _local_bytes(paths, cluster.in_process_max_bytes) \
                if len(paths) <= cluster.in_process_max_files else None
            self.executor = choose_executor(cluster, len(paths), n_bytes, self._client is not None)
            if self.executor is Executor.IN_PROCESS:
                self._client = self._stack.enter_context(InProcessClient(cluster.workers * cluster.threads_per_worker))
            elif self._client is None:
                self._client = self._stack.enter_context(dask_client(cluster))
        return self._client


def run_ingest(source: str, store: str, config: IngestConfig = IngestConfig(), client: object | None = None,
               source_options: dict | None = None, store_options: dict | None = None,
               progress: Progress | None = None, on_plan: Callable[[IngestPlan], None] | None = None,
               annotations: AnnotationOptions = AnnotationOptions()) -> IngestReport:
    """Ingest every new series under ``source`` into ``store``.

    Args:
        source: local folder or URL of DICOM files.
        store: local path or ``s3://`` URL of the store.
        config: cluster, layout, split and retry settings.
        client: an existing ``distributed.Client`` (always used, for the whole run); ``None``: run
            in-process or on a new cluster per ``config.cluster`` (see :func:`choose_executor`).
        source_options, store_options: fsspec options (default: from the environment).
        progress: called once per finished series or annotation; on_plan: called with the plan.
        annotations: where lesion annotations come from (default: auto-detect a
            phantom layout around ``source``, see :mod:`breastflow.ingest.annotations`).

    Raises:
        KeyError: ``BREASTFLOW_PSEUDONYM_KEY`` is not set.
        FileNotFoundError: ``source`` or the annotation path does not exist.
        ValueError: the split seed differs from the store's; unusable annotation path; a
            client handed in with ``Executor.IN_PROCESS``.
    """
    started = time.perf_counter()
    from breastflow.store.fs import storage_options_from_env

    loc = StoreLocation.from_url(store, store_options)
    source_options = storage_options_from_env(source) if source_options is None else source_options
    pseudo = Pseudonymiser.from_env()
    ensure_split_seed(loc, config.splits)
    annotation_source = load_annotation_source(annotations, source, source_options)  # fails before any work
    if client is not None and config.cluster.executor is Executor.IN_PROCESS:
        raise ValueError("a Dask client was given but the executor is in-process; pass no client")
    with ExitStack() as stack:
        executors = _Executors(config, client, stack)
        return _run_on(executors, source, loc, config, source_options, pseudo, annotation_source, progress,
                       on_plan, started)


def _run_on(executors: _Executors, source: str, loc: StoreLocation, config: IngestConfig,
            source_options: dict, pseudo: Pseudonymiser, annotation_source: AnnotationSource | None,
            progress: Progress | None, on_plan: Callable[[IngestPlan], None] | None, started: float) -> IngestReport:
    """Plan (probing headers here for an in-process run), ingest the series, then the annotations; finalize."""
    from breastflow.dicom.discover import probe_headers

    run_id = new_run_id()

    def probe_map(batches: list[list[str]]) -> list:
        client = executors.open([path for batch in batches for path in batch])
        if executors.executor is Executor.IN_PROCESS:  # serial: local probes are CPU bound (GIL)
            return [probe_headers(batch, source_options) for batch in batches]
        futures = client.map(probe_headers, batches, storage_options=source_options, threads=4, pure=False)
        return client.gather(futures)

    plan = plan_ingest(source, loc, pseudo, source_options, config.probe_batch, probe_map, annotation_source,
                       config.accept)
    if on_plan is not None:
        on_plan(plan)
    jobs_files = [path for job in plan.jobs for path in job.classified.series.files]
    client = executors.open(jobs_files)  # decided already unless planning probed nothing
    outcomes = _gather(_submit_all(client, ingest_series, plan.jobs, loc, config, source_options, run_id), progress)
    # annotations are validated against the *stored* images, so they follow the series
    outcomes += _gather(_submit_all(client, ingest_annotation, plan.annotation_jobs, loc, config, source_options,
                                    run_id), progress)
    return finalize_ingest(loc, plan, outcomes, config.splits, run_id, time.perf_counter() - started,
                           executors.executor.value if executors.executor else "")


def _submit_all(client, func: Callable, jobs: list, loc: StoreLocation,  # distributed.Client or InProcessClient
                config: IngestConfig, source_options: dict, run_id: str) -> dict:
    """Submit one task per job in a single ``Client.map`` call (one graph update, not one per job).

    Returns:
        ``{future: job}``.
    """
    if not jobs:
        return {}
    n = len(jobs)  # positional: the functions name their fsspec options differently
    futures = client.map(func, jobs, [loc] * n, [config.array_layout] * n, [source_options] * n,
                         key=[f"{job.key}-{run_id}" for job in jobs], retries=config.retries, pure=False)
    return dict(zip(futures, jobs, strict=True))


def _as_completed(futures: list) -> Iterator:
    """Futures as they finish: ``concurrent.futures`` (in-process) or ``distributed`` futures."""
    if not futures:
        return iter(())
    if isinstance(futures[0], concurrent.futures.Future):
        return concurrent.futures.as_completed(futures)
    from distributed import as_completed

    return as_completed(futures)


def _gather(futures: dict, progress: Progress | None) -> list[SeriesOutcome]:
    """Collect task outcomes as they finish; a failed task (retries used up) becomes a ``FAILED`` outcome."""
    outcomes = []
    for future in _as_completed(list(futures)):
        job = futures.pop(future)
        try:
            outcome = future.result()
        except Exception as err:  # noqa: BLE001 - any task failure is reported, never lost
            outcome = failed_outcome(job, err)
        if hasattr(future, "release"):  # a distributed future: let the scheduler forget the result
            future.release()
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
