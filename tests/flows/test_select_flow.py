"""The selection flow under a real Prefect API, on a real local Ray instance that selection starts and stops.

A tiny store with train / val / test studies; run ``r1`` holds an untrained
checkpoint (epoch 0), one trained 6 epochs with a real optimisation loop and a
corrupted copy (epoch 8). The flow must select the trained one, exclude the
corrupted one with its error, write ``selected.json`` and the synthesis report,
and publish both as artifacts.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "select"))  # select_helpers, report_helpers

from ray_local import ray_settings
from report_helpers import build_tiny_store, report_studies
from select_helpers import corrupt_checkpoint, train_checkpoints

from breastflow.select.results import read_selection
from breastflow.store import layout
from flows.select import SelectParameters, select_flow
from tasks.select import REPORT_KEY, TABLE_KEY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """One flow run over three checkpoints (Ray started by the selection, stopped after it)."""
    root = tmp_path_factory.mktemp("selectflow")
    store = build_tiny_store(str(root / "store"), report_studies())
    run_dir = Path(store) / layout.checkpoint_dir("pix2pixhd", "r1")
    _, trained = train_checkpoints(store, run_dir, (0, 6))
    shutil.copytree(trained, run_dir / "epoch_000008")
    corrupt_checkpoint(run_dir / "epoch_000008")
    with ray_settings(tmp_path_factory.mktemp("ray-home")):
        params = SelectParameters(store=store, model="pix2pixhd", run="r1", metrics=["ssim", "mse", "mae"])
        yield store, trained, select_flow(params)


def test_flow_selects_the_trained_checkpoint_and_excludes_the_corrupt_one(selected):
    store, trained, summary = selected
    assert summary["selected"].rstrip("/").endswith(trained.name)
    assert [f["checkpoint"].rstrip("/").rsplit("/", 1)[-1] for f in summary["failed"]] == ["epoch_000008"]
    assert summary["failed"][0]["error"]
    record = read_selection(store, "pix2pixhd", "r1")
    assert record.selected == summary["selected"] and len(record.table) == 2
    assert Path(summary["report"].replace("file://", "")).exists() or summary["report"].startswith("s3://")


def test_flow_publishes_the_table_and_the_report(selected):
    _, _, summary = selected

    async def by_key(key):
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    table = asyncio.run(by_key(TABLE_KEY))
    report = asyncio.run(by_key(REPORT_KEY))
    assert table and table[0].type == "table"
    assert str(Path(summary["selected"]).name) in str(table[0].data)
    assert report and report[0].type == "markdown" and "SAMe" in str(report[0].data)


def test_select_form_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="pix2pixhd"):
        SelectParameters(store="/tmp/s", model="pix2pixhdd")
