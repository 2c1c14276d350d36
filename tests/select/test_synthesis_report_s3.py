"""The synthesis report on ``s3://`` (real moto endpoint on 127.0.0.1): same numbers as locally, files in the bucket."""

from __future__ import annotations

import uuid

import pytest
import torch
from report_helpers import (
    METRICS,
    build_tiny_store,
    report_studies,
    selection_text,
    write_checkpoint,
    write_selected,
)

from breastflow.generate.config import GenerateConfig, GenerateSplit
from breastflow.generate.run import generate_synthetic
from breastflow.select.report import write_synthesis_report
from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.local_s3 import local_s3

pytestmark = pytest.mark.integration
CHECKPOINT = f"{layout.checkpoint_dir('pix2pixhd', 'r1')}/epoch_000001"


def _report(store: str, checkpoint: str):
    """Validation set of the checkpoint, a one-row selected.json naming it store-relative, then the report."""
    generate_synthetic(GenerateConfig(checkpoint=checkpoint, store=store, split=GenerateSplit.VAL, name="eval-e1"))
    row = {"checkpoint": CHECKPOINT, "epoch": 1, "synthetic": "eval-e1", "mse": 0.5, "same": 0.0,
           "scaled": {"mse": 0.0}}
    write_selected(store, "pix2pixhd", "r1", {"selected": CHECKPOINT, "metrics": METRICS, "table": [row],
                                              "selection": selection_text(store), "failed": [], "notes": []})
    return write_synthesis_report(store, "pix2pixhd", "r1", samples=1)


def test_report_on_s3_matches_local_and_lands_in_the_bucket(tmp_path):
    local_store = build_tiny_store(str(tmp_path / "store"), report_studies())
    torch.manual_seed(0)
    folder = write_checkpoint(tmp_path / "store" / CHECKPOINT, local_store)
    local = _report(local_store, str(folder))
    with local_s3(set_env=False) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        bucket = f"rep-{uuid.uuid4().hex[:10]}"
        server.make_bucket(bucket)
        url = f"s3://{bucket}/store"
        build_tiny_store(url, report_studies())
        loc = StoreLocation.from_url(url)
        fs = loc.filesystem()
        fs.put(str(folder / "state.pt"), loc.fs_path(CHECKPOINT, "state.pt"))
        remote = _report(url, loc.join(CHECKPOINT))
        assert remote.html == f"{url}/{layout.report_dir('pix2pixhd', 'r1')}/report.html"
        for uri in (remote.html, remote.markdown, remote.json_uri, *remote.figures):
            assert fs.exists(uri.removeprefix("s3://")), uri
        assert fs.cat_file(remote.markdown.removeprefix("s3://")).decode() == remote.markdown_text
        assert [r["values"] for r in remote.table2] == [r["values"] for r in local.table2]
        assert remote.lesion_boxes == local.lesion_boxes and remote.kinetics == local.kinetics
        assert remote.memorisation["values"] == local.memorisation["values"]
        assert sorted(f.rsplit("/", 1)[1] for f in remote.figures) == sorted(f.rsplit("/", 1)[1] for f in local.figures)
