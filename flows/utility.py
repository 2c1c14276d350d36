"""The utility flow: does the synthetic data help 3D tumour segmentation? (paper 003 sec. 4.3, Table 3)

One typed parameter, :class:`UtilityParameters`, so the Prefect UI shows a form
(store, synthetic set, scenarios, quick, folds). It runs ``breastflow utility``
(identical training sets trained once, folds in parallel on Ray, ensembles on the
test cases, Wilcoxon against each scenario's baseline row, cross-vendor rows) and
publishes the Table-3 rows and the report as artifacts. The pipeline chains
selection -> generation -> utility through :func:`pipeline_flow`: the selected
checkpoint generates the store's studies into a synthetic set, which the
scenarios then train on.

Run locally::

    python -m flows.utility /data/store SYNTHETIC_SET
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.segmentation.cases import check_test_splits
from breastflow.segmentation.scenarios import parse_scenarios
from breastflow.store.fs import StoreLocation, read_bytes
from tasks.utility import publish_utility_task, utility_task


class UtilityParameters(BaseModel):
    """The utility form: what ``breastflow utility STORE --synthetic NAME --scenarios --quick --folds`` takes.

    Attributes:
        store: the store (local path on the worker's host, or ``s3://bucket/prefix``).
        synthetic: the synthetic set of the ``syn post`` rows (``synthetic/<name>/``).
        scenarios: comma-separated scenario numbers 1-4 (paper 003 Table 3).
        quick: the reduced configuration (small patches, few epochs, 3 folds) for CPUs.
        folds: folds per training (empty: 5, quick 3).
        cross_vendor: also the cross-vendor rows (train on one vendor, test on another).
        test_splits: catalog splits whose cases form the test set (``["val", "test"]`` for a small cohort).
    """

    model_config = ConfigDict(extra="forbid")

    store: str = Field(min_length=1, description="store: local path on the worker's host or s3://bucket/prefix")
    synthetic: str = Field(min_length=1, description="synthetic set of the syn-post rows (synthetic/<name>/)")
    scenarios: str = Field("1,2,3,4", description="scenario numbers, comma-separated (1-4)")
    quick: bool = Field(False, description="reduced configuration for CPUs")
    folds: int | None = Field(None, ge=2, le=10, description="folds per training; empty: 5 (quick: 3)")
    cross_vendor: bool = Field(True, description="also train on one vendor and test on another")
    test_splits: list[str] = Field(["test"], description="catalog splits whose cases are the test set")

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, value: str) -> str:
        parse_scenarios(value)  # out of range / malformed: a ValueError naming it
        return value

    @field_validator("test_splits")
    @classmethod
    def _test_splits(cls, value: list[str]) -> list[str]:
        return list(check_test_splits(value))  # unknown or every split: a ValueError naming it


@flow(name="breastflow-utility", log_prints=False)
def utility_flow(params: UtilityParameters) -> dict[str, Any]:
    """Train and test the scenarios' 3D U-Nets, publish Table 3 and the report.

    Returns:
        :meth:`breastflow.segmentation.utility.UtilityResult.to_json` (``rows`` with ``dice_mean`` ...).

    Raises:
        What ``breastflow utility`` raises (no masks, unknown synthetic set, scenario out of range ...).
    """
    logger = get_run_logger()
    logger.info("utility of synthetic set %s on %s: scenarios %s%s", params.synthetic, params.store,
                params.scenarios, " (quick)" if params.quick else "")
    result = utility_task(params.store, params.synthetic, params.scenarios, params.quick, params.folds,
                          params.cross_vendor, test_splits=tuple(params.test_splits))
    for row in result.rows:
        logger.info("scenario %d, %s -> %s: Dice %.3f (paper %s)", row.scenario, row.train_label, row.test,
                    row.dice_mean, row.paper_dice)
    markdown = None
    if result.report.get("markdown"):
        loc = StoreLocation.from_url(params.store)
        path = result.report["markdown"]
        markdown = read_bytes(loc, path[len(loc.url) + 1:] if path.startswith(loc.url + "/") else path).decode()
    publish_utility_task(result, markdown)
    return result.to_json()


class PipelineParameters(BaseModel):
    """Selection -> generation -> utility in one run: the best checkpoint of a training run, its synthetic
    post-contrast series for every study, then the segmentation scenarios on them.

    Attributes:
        store, model, run: the training run whose checkpoints are selected from.
        metrics: selection metrics (empty: the family's default).
        synthetic: name of the synthetic set the chosen checkpoint writes (empty: ``<model>-<run>-sel-all``).
        scenarios, quick, folds, cross_vendor, test_splits: as :class:`UtilityParameters`.
        gpu: select, generate and train on a GPU.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    store: str = Field(min_length=1)
    model: str = "pix2pixhd"
    run: str = "default"
    metrics: list[str] | None = None
    synthetic: str | None = None
    scenarios: str = "1,2,3,4"
    quick: bool = False
    folds: int | None = Field(None, ge=2, le=10)
    cross_vendor: bool = True
    test_splits: list[str] = ["test"]
    gpu: bool = False

    @field_validator("scenarios")
    @classmethod
    def _scenarios(cls, value: str) -> str:
        parse_scenarios(value)
        return value

    @field_validator("test_splits")
    @classmethod
    def _test_splits(cls, value: list[str]) -> list[str]:
        return list(check_test_splits(value))


@flow(name="breastflow-pipeline", log_prints=False)
def pipeline_flow(params: PipelineParameters) -> dict[str, Any]:
    """Chain :func:`flows.select.select_flow` -> generation of every study -> :func:`utility_flow`.

    Returns:
        ``{"selection": <select summary>, "synthetic": <set name>, "utility": <utility JSON>}``.
    """
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from flows.select import SelectParameters, select_flow
    from tasks.train import generate_task, publish_generate_task

    selection = select_flow(SelectParameters(store=params.store, model=params.model, run=params.run,
                                             metrics=params.metrics, gpu=params.gpu))
    name = params.synthetic or f"{params.model}-{params.run}-sel-all"[:64]
    generated = generate_task(GenerateConfig(checkpoint=selection["selected"], store=params.store,
                                             split=GenerateSplit.ALL, name=name, model=params.model,
                                             device="cuda" if params.gpu else "cpu"))
    publish_generate_task(generated, params.store)
    utility = utility_flow(UtilityParameters(store=params.store, synthetic=generated.name, scenarios=params.scenarios,
                                             quick=params.quick, folds=params.folds,
                                             cross_vendor=params.cross_vendor, test_splits=params.test_splits))
    return {"selection": selection, "synthetic": generated.name, "utility": utility}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m flows.utility STORE SYNTHETIC_SET")
    print(json.dumps(utility_flow(UtilityParameters(store=sys.argv[1], synthetic=sys.argv[2])), indent=2))
