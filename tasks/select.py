"""Prefect tasks of the selection flow: each is one call into ``breastflow.select``.

Selection fans out on Ray Tune inside this plain task (Ray on ``RAY_ADDRESS`` or
a local instance the task starts and stops). A retry re-evaluates only the
checkpoints whose results are not stored yet (``eval/`` in the store), so the
task is retried on storage and Ray failures, never on bad input.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from breastflow.select.report import SynthesisReport, write_synthesis_report
from breastflow.select.run import SelectConfig, SelectionResult, select_checkpoints
from tasks.retry import retry_on

SELECT_RETRY_DELAYS = [10]
TABLE_KEY = "breastflow-select-table"
REPORT_KEY = "breastflow-synthesis-report"
#: Ray's error types when a worker or the cluster failed (matched by name: Ray is imported lazily)
RAY_FAILURES = ("RayTaskError", "RaySystemError", "WorkerCrashedError", "TuneError")


#: Retry after a storage blink or a Ray failure (stored results are reused), never after bad input.
retry_selection = retry_on(RAY_FAILURES)


@task(retries=1, retry_delay_seconds=SELECT_RETRY_DELAYS, retry_condition_fn=retry_selection,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="select-{config.model}-{config.run}")
def select_task(config: SelectConfig) -> SelectionResult:
    """Evaluate every checkpoint of the run on Ray Tune and record the choice (``breastflow select``)."""
    from breastflow.train.follow import dashboard_url

    logger = get_run_logger()

    def started() -> None:
        url = dashboard_url()
        logger.info("Ray connected; trials visible in the dashboard at %s", url or "(no dashboard)")

    return select_checkpoints(config, on_start=started)


@task(retries=1, retry_delay_seconds=SELECT_RETRY_DELAYS, retry_condition_fn=retry_selection,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="report-{model}-{run}-{split}")
def report_task(store: str, model: str, run: str, split: str, device: str = "cpu") -> SynthesisReport:
    """Write the synthesis report of the run's selected checkpoint on ``split`` (``breastflow report``)."""
    return write_synthesis_report(store, model, run, split=split, device=device)


def selection_rows(result: SelectionResult) -> list[dict[str, object]]:
    """Table 1 as artifact rows: checkpoint, epoch, the criterion's metrics, SAMe, whether selected."""
    rows = []
    for row in result.table:
        out: dict[str, object] = {"checkpoint": row["checkpoint"], "epoch": row.get("epoch")}
        out.update({m: row.get(m) for m in result.metrics})
        out["same"] = row.get("same")
        out["selected"] = row["checkpoint"] == result.selected
        rows.append(out)
    rows.extend({"checkpoint": f["checkpoint"], "error": f["error"]} for f in result.failed)
    return rows


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_selection_task(result: SelectionResult, report: SynthesisReport | None) -> None:
    """Publish the per-checkpoint table and the synthesis report (Markdown) as artifacts."""
    create_table_artifact(table=selection_rows(result), key=TABLE_KEY,
                          description=f"checkpoint selection of {result.model}/{result.run} ({result.criterion}); "
                                      f"selected {result.selected}")
    if report is not None:
        create_markdown_artifact(markdown=report.markdown_text, key=REPORT_KEY,
                                 description=f"synthesis report of {result.model}/{result.run}: {report.html}")
