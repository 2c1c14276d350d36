"""Prefect tasks of the ingest flow: each is one call into ``breastflow.ingest``.

Storage errors (S3 endpoint down, connection reset) are retried after 2, 5
and 15 seconds; bad input is never retried (it is quarantined inside the
library). The pseudonym key is read inside the planning task (environment or
a Prefect Secret block), never passed as a parameter, so it never appears in
the Prefect API. Results are not persisted: plans hold raw UIDs in memory.
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from breastflow.deid.pseudonym import KEY_ENV_VAR, PseudonymKeyError
from breastflow.dicom.classify import AcceptPolicy
from breastflow.ingest.annotation_job import AnnotationJob, ingest_annotation
from breastflow.ingest.annotations import AnnotationOptions, load_annotation_source
from breastflow.ingest.pipeline import ensure_split_seed, finalize_ingest
from breastflow.ingest.plan import IngestPlan, SeriesJob, plan_ingest
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.ingest.report import (
    IngestReport,
    SeriesOutcome,
    report_markdown,
    report_table,
)
from breastflow.ingest.series import ingest_series, is_transient
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import SplitConfig
from breastflow.store.zarr_io import ArrayLayout

RETRY_DELAYS = [2, 5, 15]


def retry_on_transient(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's callback signature
    """Retry only storage/network errors, never bad input."""
    try:
        state.result()
    except Exception as err:  # noqa: BLE001 - classify whatever the task raised
        return is_transient(err)
    return False


def _pseudonymiser(key_secret_block: str | None) -> Pseudonymiser:
    if key_secret_block is None:
        return Pseudonymiser.from_env()
    from prefect.blocks.system import Secret

    try:
        secret = Secret.load(key_secret_block)
    except ValueError as err:  # Prefect: "Unable to find block document named ..."
        raise PseudonymKeyError(
            f"the pseudonym key's Prefect Secret block {key_secret_block!r} was not found on the Prefect API "
            f"({err}); create it (infra/README.md, 'The pseudonym key') or run with key_secret_block=None "
            f"to read {KEY_ENV_VAR} from the environment") from err
    return Pseudonymiser(secret.get().encode("utf-8"))


@task(retries=3, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient,
      cache_policy=NO_CACHE, persist_result=False)
def plan_task(source: str, store: StoreLocation, splits: SplitConfig, key_secret_block: str | None = None,
              source_options: dict | None = None,
              annotations: AnnotationOptions = AnnotationOptions(),
              accept: AcceptPolicy = AcceptPolicy.BREAST) -> IngestPlan:
    """Plan the run (headers and annotations); records the split seed in the store on first use."""
    ensure_split_seed(store, splits)
    return plan_ingest(source, store, _pseudonymiser(key_secret_block), source_options,
                       annotations=load_annotation_source(annotations, source, source_options), accept=accept)


@task(retries=3, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="{job.key}")
def ingest_series_task(job: SeriesJob, store: StoreLocation, array_layout: ArrayLayout,
                       source_options: dict | None = None) -> SeriesOutcome:
    """Read, de-identify, write, verify and commit one series."""
    return ingest_series(job, store, array_layout, source_options)


@task(retries=3, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="{job.key}")
def annotate_task(job: AnnotationJob, store: StoreLocation, array_layout: ArrayLayout,
                  source_options: dict | None = None) -> SeriesOutcome:
    """Validate one study's annotations against its stored images, write the mask and boxes, commit."""
    return ingest_annotation(job, store, array_layout, source_options)


@task(retries=3, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient,
      cache_policy=NO_CACHE, persist_result=False)
def finalize_task(store: StoreLocation, plan: IngestPlan, outcomes: list[SeriesOutcome], splits: SplitConfig,
                  run_id: str, seconds: float) -> IngestReport:
    """Rebuild the catalog and write the PHI-free run report into the store."""
    return finalize_ingest(store, plan, outcomes, splits, run_id, seconds)


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_report_task(report: IngestReport) -> None:
    """Publish the run's PHI-free summary as Prefect markdown and table artifacts."""
    create_markdown_artifact(markdown=report_markdown(report), key="breastflow-ingest-summary",
                             description="breastflow ingest run summary (no PHI)")
    rows = report_table(report)
    if rows:
        create_table_artifact(table=rows, key="breastflow-ingest-quarantine",
                              description="quarantined, failed and ignored series (pseudonyms only)")
