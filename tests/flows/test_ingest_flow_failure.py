"""A run where nothing lands ends Failed in Prefect, after publishing its artifact."""

from __future__ import annotations

import pytest

from flows.ingest import dask_task_runner, ingest_flow

pytestmark = pytest.mark.integration


def test_run_with_nothing_landing_fails_after_its_report(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "notes.txt").write_text("not a DICOM file")
    flow = ingest_flow.with_options(task_runner=dask_task_runner(workers=1, processes=False))
    state = flow(str(landing), str(tmp_path / "store"), return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="nothing landed.*not-dicom"):
        state.result()
