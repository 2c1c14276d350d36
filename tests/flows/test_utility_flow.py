"""The utility flow under a real Prefect API, on a real local Ray that the run starts and stops.

The tiny two-vendor segmentation store of tests/segmentation (7 pool + 4 test
studies, synthetic set = real post x 0.9), scenario 2 only, quick configuration,
2 folds, no cross-vendor rows: the flow must return Table 3's scenario-2 rows,
write the report into the store and publish the table and the report.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segmentation"))  # segmentation_helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

from ray_local import ray_settings
from segmentation_helpers import build_segmentation_store

from flows.utility import UtilityParameters, utility_flow
from tasks.utility import REPORT_KEY, TABLE_KEY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    loc = build_segmentation_store(str(tmp_path_factory.mktemp("utilityflow") / "store"), synthetic="syn")
    with ray_settings(tmp_path_factory.mktemp("ray-home")):
        yield loc, utility_flow(UtilityParameters(store=loc.url, synthetic="syn", scenarios="2", quick=True, folds=2,
                                                  cross_vendor=False))


def _artifacts(key: str):
    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    return asyncio.run(read())


def test_flow_returns_the_scenario_2_rows_and_writes_the_report(ran):
    loc, summary = ran
    rows = summary["rows"]
    assert [r["scenario"] for r in rows] == [2, 2, 2]
    assert [r["train"] for r in rows] == ["real_pre", "real_pre+syn_post", "syn_post"]
    assert all(r["test"] == "real_post" and r["n_test"] == 4 and 0.0 <= r["dice_mean"] <= 1.0 for r in rows)
    assert rows[0]["wilcoxon_p"] is None and rows[1]["baseline_delta"] is not None  # baseline row vs augmented row
    assert summary["report"] and loc.filesystem().exists(loc.fs_path(summary["report"]["html"]))


def test_flow_publishes_table_3_and_the_report(ran):
    table, report = _artifacts(TABLE_KEY), _artifacts(REPORT_KEY)
    assert table and table[0].type == "table" and "real pre" in str(table[0].data) and "paper_dice" in str(table[0].data)
    assert report and report[0].type == "markdown" and "Dice" in str(report[0].data)
