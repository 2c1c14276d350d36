"""The ingest flow: DICOM landing zone -> de-identified Zarr store, series in parallel on Dask.

Run locally::

    python -m flows.ingest /data/landing /data/store

or deploy with ``deployments/prefect.yaml`` (cron schedule). The Dask cluster
comes from the task runner: a scheduler address in ``BREASTFLOW_DASK_SCHEDULER``
or, without one, a LocalCluster started by prefect-dask.
"""

from __future__ import annotations

import os
import sys
import time

from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner

from breastflow.dicom.classify import AcceptPolicy
from breastflow.ingest.annotations import AnnotationOptions
from breastflow.ingest.pipeline import failed_outcome, new_run_id
from breastflow.ingest.report import ExitStatus
from breastflow.store.fs import StoreLocation, storage_options_from_env
from breastflow.store.splits import SplitConfig
from breastflow.store.zarr_io import ArrayLayout
from tasks.ingest import (
    annotate_task,
    finalize_task,
    ingest_series_task,
    plan_task,
    publish_report_task,
)

SCHEDULER_ENV = "BREASTFLOW_DASK_SCHEDULER"


def dask_task_runner(address: str | None = None, workers: int = 2, processes: bool = True) -> DaskTaskRunner:
    """A DaskTaskRunner on a running scheduler, or on a LocalCluster of ``workers`` single-thread workers."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                          "processes": processes, "dashboard_address": None})


@flow(name="breastflow-ingest", task_runner=dask_task_runner(os.environ.get(SCHEDULER_ENV)),
      log_prints=False)
def ingest_flow(source: str, store: str, seed: int = 0, shard_slices: int = 16,
                key_secret_block: str | None = None, annotations: str | None = None,
                detect_annotations: bool = True, annotation_index_base: int = 0,
                accept: AcceptPolicy = AcceptPolicy.BREAST) -> dict:
    """Ingest every new series under ``source`` into ``store``; returns the PHI-free summary.

    Args:
        source: landing zone (local folder or ``s3://`` URL).
        store: Zarr store (local folder or ``s3://`` URL); endpoint/credentials from the environment.
        seed: patient-level split seed (must match the store's).
        shard_slices: axial slices per shard.
        key_secret_block: name of a Prefect Secret block holding the pseudonym key;
            ``None`` reads ``BREASTFLOW_PSEUDONYM_KEY`` from the environment.
        annotations: phantom folder or Duke-style table of lesion annotations
            (see :mod:`breastflow.ingest.annotations`); ``None``: auto-detect.
        detect_annotations: without ``annotations``, use the phantom layout around
            ``source`` when ``source`` is ``<folder>/dicom`` (False: no annotations).
        annotation_index_base: 0 or 1, the first index of the table's bounds.
        accept: ``breast`` stores MR series as pre/post/t2 only with breast evidence;
            ``any`` stores every acquired MR/MG series with a role from timing (untagged data).
    """
    started = time.perf_counter()
    logger = get_run_logger()
    run_id = new_run_id()
    loc = StoreLocation.from_url(store)
    source_options = storage_options_from_env(source)
    splits = SplitConfig(seed=seed)
    options = AnnotationOptions(path=annotations, auto_detect=detect_annotations, index_base=annotation_index_base)
    plan = plan_task(source, loc, splits, key_secret_block, source_options, options, AcceptPolicy(accept))
    logger.info("run %s: %d files, %d series to ingest, %d decided while planning",
                run_id, plan.n_files, len(plan.jobs), len(plan.outcomes))
    layout = ArrayLayout(shard_slices=shard_slices)
    futures = [ingest_series_task.submit(job, loc, layout, source_options) for job in plan.jobs]
    outcomes = []
    for job, future in zip(plan.jobs, futures, strict=True):
        try:
            outcomes.append(future.result())
        except Exception as err:  # noqa: BLE001 - a failed series is reported, the run goes on
            outcomes.append(failed_outcome(job, err))
    # annotations are checked against the stored images, so they follow the series
    futures = [annotate_task.submit(job, loc, layout, source_options) for job in plan.annotation_jobs]
    for job, future in zip(plan.annotation_jobs, futures, strict=True):
        try:
            outcomes.append(future.result())
        except Exception as err:  # noqa: BLE001 - a failed annotation is reported, the run goes on
            outcomes.append(failed_outcome(job, err))
    report = finalize_task(loc, plan, outcomes, splits, run_id, time.perf_counter() - started)
    publish_report_task(report)
    summary = report.summary()
    logger.info("run %s: %s", run_id, {k: v for k, v in summary.items() if k != "reasons"})
    if report.exit_status() is ExitStatus.FAILURE:
        # The artifact is published; end the run red so a broken cluster or store is not shown as green.
        raise RuntimeError(f"ingest run {run_id} failed: nothing landed ({summary['reasons']}); see its artifact")
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m flows.ingest SOURCE STORE")
    print(ingest_flow(sys.argv[1], sys.argv[2]))
