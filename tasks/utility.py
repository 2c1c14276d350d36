"""Prefect tasks of the utility flow: each is one call into ``breastflow.segmentation``.

The folds train as Ray tasks inside this plain task (Ray on ``RAY_ADDRESS`` or a
local instance started and stopped by the run). A retry resumes every fold from
its checkpoint in the store, so the task is retried on Ray and storage failures,
never on bad input (unknown synthetic set, no masks, a scenario out of range).
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from breastflow.segmentation.cases import DEFAULT_TEST_SPLITS
from breastflow.segmentation.utility import UtilityResult, run_utility
from tasks.retry import retry_on

UTILITY_RETRY_DELAYS = [10]
TABLE_KEY = "breastflow-utility-table3"
REPORT_KEY = "breastflow-utility-report"
#: Ray's error types when a worker or the cluster failed (matched by name: Ray is imported lazily)
RAY_FAILURES = ("RayTaskError", "RaySystemError", "WorkerCrashedError", "OwnerDiedError")


#: Retry after a Ray or storage failure (folds resume from their checkpoints), never after bad input.
retry_utility = retry_on(RAY_FAILURES)


@task(retries=1, retry_delay_seconds=UTILITY_RETRY_DELAYS, retry_condition_fn=retry_utility,
      cache_policy=NO_CACHE, persist_result=False, task_run_name="utility-{synthetic}")
def utility_task(store: str, synthetic: str | None, scenarios: str, quick: bool, folds: int | None,
                 cross_vendor: bool, rows: tuple[str, ...] | None = None,
                 test_splits: tuple[str, ...] = DEFAULT_TEST_SPLITS) -> UtilityResult:
    """Train the scenarios' rows (folds on Ray), predict the test cases and write the Table-3 report."""
    return run_utility(store, synthetic, scenarios, quick=quick, folds=folds, cross_vendor=cross_vendor, rows=rows,
                       test_splits=test_splits)


def table_rows(result: UtilityResult) -> list[dict[str, object]]:
    """Table 3 as artifact rows: scenario, training set, test source, our Dice, the paper's, Wilcoxon p."""
    out = []
    for r in (*result.rows, *result.cross_vendor):
        out.append({"scenario": r.scenario, "train": r.train_label, "test": r.test, "dice_mean": round(r.dice_mean, 4),
                    "n_test": r.n_test, "paper_dice": r.paper_dice,
                    "delta_vs_baseline": None if r.baseline_delta is None else round(r.baseline_delta, 4),
                    "wilcoxon_p": r.wilcoxon_p})
    return out


@task(cache_policy=NO_CACHE, persist_result=False)
def publish_utility_task(result: UtilityResult, markdown: str | None) -> None:
    """Publish the Table-3 rows and the report's Markdown as artifacts."""
    create_table_artifact(table=table_rows(result), key=TABLE_KEY,
                          description=f"segmentation utility {result.experiment}: Dice per row (paper 003 Table 3)")
    if markdown:
        create_markdown_artifact(markdown=markdown, key=REPORT_KEY,
                                 description=f"utility report {result.experiment}: {result.report.get('html', '')}")
