"""Generation on ``s3://`` (real moto endpoint on 127.0.0.1): checkpoint and store remote, same voxels as locally."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from generate_helpers import build_tiny_store, write_checkpoint

from breastflow.generate.config import GenerateConfig, GenerateSplit
from breastflow.generate.run import generate_synthetic
from breastflow.generate.synthetic import read_synthetic_commits
from breastflow.data.selection_loading import load_selection
from breastflow.store.fs import StoreLocation
from breastflow.store.local_s3 import local_s3

pytestmark = pytest.mark.integration


def test_generate_on_s3_matches_local(tmp_path):
    local_store = build_tiny_store(str(tmp_path / "store"))
    checkpoint = write_checkpoint(tmp_path / "ck", local_store)
    local = generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=local_store, split=GenerateSplit.TEST,
                                              name="g"))
    with local_s3(set_env=False) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        bucket = f"gen-{uuid.uuid4().hex[:10]}"
        server.make_bucket(bucket)
        url = f"s3://{bucket}/store"
        build_tiny_store(url)
        loc = StoreLocation.from_url(url)
        fs = loc.filesystem()
        fs.put(str(checkpoint / "state.pt"), f"{bucket}/store/checkpoints/pix2pixhd/r1/epoch_000001/state.pt")
        remote = generate_synthetic(GenerateConfig(checkpoint=f"{url}/checkpoints/pix2pixhd/r1/epoch_000001",
                                                   store=url, split=GenerateSplit.TEST, name="g"))
        assert remote.studies == local.studies and remote.checkpoint == "checkpoints/pix2pixhd/r1/epoch_000001/state.pt"
        remote_hashes = [r.content_hash for r in read_synthetic_commits(loc, "g")]
        local_hashes = [r.content_hash for r in read_synthetic_commits(StoreLocation.from_url(local_store), "g")]
        assert remote_hashes == local_hashes  # the same generator on the same voxels: identical synthetic series
        images = load_selection(f"{url}?synthetic=g&series=post_1", "fake")
        local_images = load_selection(f"store://{local_store}?synthetic=g&series=post_1", "fake")
        assert images.names == local_images.names
        assert all(np.array_equal(a, b) for a, b in zip(images.images, local_images.images, strict=True))
