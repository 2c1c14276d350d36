"""Run an ingest over a Dask cluster: plan, ingest series in parallel, finalize.

``run_ingest`` is what the CLI calls. The Prefect flow composes the same
stages (:func:`plan_ingest`, :func:`ingest_series`, then
:func:`~breastflow.ingest.annotation_job.ingest_annotation` for annotated studies
once their series are in, :func:`finalize_ingest`) as tasks on a DaskTaskRunner.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from breastflow.ingest.annotation_job import AnnotationJob, ingest_annotation
from breastflow.ingest.annotations import AnnotationOptions, AnnotationSource, load_annotation_source
from breastflow.ingest.config import ClusterConfig, IngestConfig
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
                    run_id: str, seconds: float) -> IngestReport:
    """Rebuild the catalog from the commit markers and write the PHI-free run report.

    Returns:
        The report of the run (operator view available via ``to_operator_dict``).
    """
    report = IngestReport(run_id=run_id, outcomes=[*plan.outcomes, *outcomes], seconds=seconds)
    rebuild_catalog(loc, splits)
    payload = json.dumps(report.to_store_dict(), indent=1, sort_keys=True).encode()
    atomic_write_bytes(loc, layout.report_file(run_id), payload)
    return report


@contextmanager
def dask_client(cluster: ClusterConfig) -> Iterator[object]:
    """A Dask client on the given scheduler, or on a LocalCluster closed afterwards."""
    from distributed import Client, LocalCluster

    if cluster.scheduler:
        with Client(cluster.scheduler) as client:
            yield client
        return
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 makes glibc return every freed
    # slice buffer to the OS; decoding thousands of slices then costs more system
    # time than decoding (measured: ingest 12 s -> 9 s per study, docs/store.md).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 1 << 30}), \
            LocalCluster(n_workers=cluster.workers, threads_per_worker=cluster.threads_per_worker,
                         processes=cluster.processes, memory_limit=cluster.memory_limit,
                         dashboard_address=None) as local, Client(local) as client:
        yield client


def run_ingest(source: str, store: str, config: IngestConfig = IngestConfig(), client: object | None = None,
               source_options: dict | None = None, store_options: dict | None = None,
               progress: Progress | None = None, on_plan: Callable[[IngestPlan], None] | None = None,
               annotations: AnnotationOptions = AnnotationOptions()) -> IngestReport:
    """Ingest every new series under ``source`` into ``store``.

    Args:
        source: local folder or URL of DICOM files.
        store: local path or ``s3://`` URL of the store.
        config: cluster, layout, split and retry settings.
        client: an existing ``distributed.Client``; ``None`` opens one per ``config.cluster``.
        source_options, store_options: fsspec options (default: from the environment).
        progress: called once per finished series or annotation; on_plan: called with the plan.
        annotations: where lesion annotations come from (default: auto-detect a
            phantom layout around ``source``, see :mod:`breastflow.ingest.annotations`).

    Raises:
        KeyError: ``BREASTFLOW_PSEUDONYM_KEY`` is not set.
        FileNotFoundError: ``source`` or the annotation path does not exist.
        ValueError: the split seed differs from the store's; unusable annotation path.
    """
    started = time.perf_counter()
    from breastflow.store.fs import storage_options_from_env

    loc = StoreLocation.from_url(store, store_options)
    source_options = storage_options_from_env(source) if source_options is None else source_options
    pseudo = Pseudonymiser.from_env()
    ensure_split_seed(loc, config.splits)
    annotation_source = load_annotation_source(annotations, source, source_options)  # fails before any work
    if client is None:
        with dask_client(config.cluster) as owned:
            return _run_on(owned, source, loc, config, source_options, pseudo, annotation_source, progress, on_plan,
                           started)
    return _run_on(client, source, loc, config, source_options, pseudo, annotation_source, progress, on_plan, started)


def _run_on(client, source: str, loc: StoreLocation, config: IngestConfig,  # noqa: ANN001 - distributed.Client
            source_options: dict, pseudo: Pseudonymiser, annotation_source: AnnotationSource | None,
            progress: Progress | None, on_plan: Callable[[IngestPlan], None] | None, started: float) -> IngestReport:
    """Plan, ingest the series, then the annotations, on ``client``; finalize."""
    from breastflow.dicom.discover import probe_headers

    run_id = new_run_id()

    def probe_map(batches: list[list[str]]) -> list:
        futures = client.map(probe_headers, batches, storage_options=source_options, threads=4, pure=False)
        return client.gather(futures)

    plan = plan_ingest(source, loc, pseudo, source_options, config.probe_batch, probe_map, annotation_source,
                       config.accept)
    if on_plan is not None:
        on_plan(plan)
    outcomes = _gather(_submit_all(client, ingest_series, plan.jobs, loc, config, source_options, run_id), progress)
    # annotations are validated against the *stored* images, so they follow the series
    outcomes += _gather(_submit_all(client, ingest_annotation, plan.annotation_jobs, loc, config, source_options,
                                    run_id), progress)
    return finalize_ingest(loc, plan, outcomes, config.splits, run_id, time.perf_counter() - started)


def _submit_all(client, func: Callable, jobs: list, loc: StoreLocation,  # client: distributed.Client
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


def _gather(futures: dict, progress: Progress | None) -> list[SeriesOutcome]:
    """Collect task outcomes as they finish; a failed task becomes a ``FAILED`` outcome."""
    from distributed import as_completed

    outcomes = []
    for future in as_completed(list(futures)):
        job = futures.pop(future)
        try:
            outcome = future.result()
        except Exception as err:  # noqa: BLE001 - any task failure is reported, never lost
            outcome = failed_outcome(job, err)
        future.release()
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
