"""The selection flow: every checkpoint of a training run evaluated on Ray Tune, the best one chosen, the report.

The flow takes one typed parameter, :class:`SelectParameters`, so the Prefect
UI shows a form (store, model, run, metrics, split). It runs
``breastflow select`` (one Ray Tune trial per checkpoint, SAMe or the family's
criterion, ``selected.json`` in the store) and then ``breastflow report`` on
the test split, and publishes the per-checkpoint table and the report as
artifacts. The training flow chains into it with ``select_after``.

Run locally::

    python -m flows.select /data/store pix2pixhd default
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.evaluate.config import EvaluationConfig
from breastflow.models import MODELS, model_name
from breastflow.select.run import SelectConfig
from tasks.select import publish_selection_task, report_task, select_task


class SelectParameters(BaseModel):
    """The selection form: what ``breastflow select RUN STORE --model --metrics --split`` takes.

    Attributes:
        store: the store (local path on the worker's host, or ``s3://bucket/prefix``).
        model: registry name of the GAN family whose run is selected from.
        run: the training run (``checkpoints/<model>/<run>/``).
        metrics: the criterion's metrics (empty: the family's default, e.g. paper 003's SAMe set).
        split: the studies the checkpoints are evaluated on (``val``).
        report_split: the studies of the synthesis report (``test``); empty: no report.
        data_range: intensity range of the metrics (empty: the real set's observed range).
        max_concurrent: trials at once (empty: from the cluster's resources).
        force: re-evaluate checkpoints whose results are stored.
        gpu: evaluate and write the report on ``cuda`` (trials share the cluster's GPUs in fractions).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    store: str = Field(min_length=1, description="store: local path on the worker's host or s3://bucket/prefix")
    model: str = Field("pix2pixhd", description="GAN family: " + ", ".join(MODELS.names()))
    run: str = Field("default", description="training run whose checkpoints are compared")
    metrics: list[str] | None = Field(None, description="criterion metrics; empty: the family's default")
    split: str = Field("val", description="studies the checkpoints are evaluated on")
    report_split: str | None = Field("test", description="studies of the synthesis report; empty: no report")
    data_range: float | None = Field(None, gt=0, description="intensity range; empty: the real set's range")
    max_concurrent: int | None = Field(None, ge=1, description="trials at once; empty: from the cluster")
    force: bool = Field(False, description="re-evaluate checkpoints already evaluated")
    gpu: bool = Field(False, description="fractional GPU per trial; report on cuda")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return model_name(value)

    def select_config(self) -> SelectConfig:
        """The validated :class:`~breastflow.select.run.SelectConfig` (what ``breastflow select`` builds)."""
        evaluation = EvaluationConfig(allow_clipping=True, data_range=self.data_range,
                                      device="cuda" if self.gpu else None)
        return SelectConfig(store=self.store, model=self.model, run=self.run, metrics=tuple(self.metrics or ()),
                            split=self.split, evaluation=evaluation, max_concurrent=self.max_concurrent,
                            force=self.force)


@flow(name="breastflow-select", log_prints=False)
def select_flow(params: SelectParameters) -> dict[str, Any]:
    """Select the best checkpoint of a run on Ray Tune, write and publish the synthesis report.

    Returns:
        ``{"selected", "criterion", "metrics", "table", "failed", "notes", "selected_uri", "report"}``.

    Raises:
        What ``breastflow select`` raises (no checkpoints, unknown metric, every trial failed ...).
    """
    logger = get_run_logger()
    config = params.select_config()
    logger.info("selecting among the checkpoints of %s/%s on %s (%s split)", params.model, params.run,
                params.store, params.split)
    result = select_task(config)
    for failure in result.failed:
        logger.warning("checkpoint %s excluded: %s", failure["checkpoint"], failure["error"])
    for note in result.notes:
        logger.info("note: %s", note)
    report = None
    if params.report_split:
        report = report_task(params.store, params.model, params.run, params.report_split,
                             "cuda" if params.gpu else "cpu")
    publish_selection_task(result, report)
    return {"selected": result.selected, "criterion": result.criterion, "metrics": list(result.metrics),
            "table": result.table, "failed": result.failed, "notes": result.notes, "selected_uri": result.uri,
            "report": None if report is None else report.html}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m flows.select STORE MODEL RUN")
    print(json.dumps(select_flow(SelectParameters(store=sys.argv[1], model=sys.argv[2], run=sys.argv[3])),
                     indent=2, default=str))
