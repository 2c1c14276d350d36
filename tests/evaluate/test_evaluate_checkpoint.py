"""evaluate_checkpoint: generation + paired metrics + lesion-box variants, the real-feature cache, version checks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "select"))  # select_helpers

from select_helpers import BOX, build_select_store, selection_of, train_checkpoints

from breastflow.data.selection_loading import load_selection
from breastflow.evaluate.checkpoint import (
    eval_set_name,
    evaluate_checkpoint,
    evaluate_checkpoint_details,
    real_set_key,
)
from breastflow.evaluate.config import EvaluationConfig
from breastflow.metrics.cache import FeatureCache
from breastflow.train.checkpoint import CheckpointMismatchError

CONFIG = EvaluationConfig(metrics=("mse", "mae", "psnr", "ssim", "fid_img"), allow_clipping=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, list[Path]]:
    root = tmp_path_factory.mktemp("evalck")
    store = build_select_store(str(root / "store"))
    return store, train_checkpoints(store, root / "ck", (0, 6))


def test_values_roi_and_cache(trained):
    import torch

    torch.set_num_threads(1)
    store, (untrained, ckpt) = trained
    cache = FeatureCache(str(Path(store) / "eval" / "features"))
    first = evaluate_checkpoint_details(str(ckpt), selection_of(store), CONFIG, feature_cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    values = first.values
    for key in ("mse", "mae", "psnr", "ssim", "fid_img", "roi_mse", "roi_mae", "roi_psnr", "roi_ssim"):
        assert np.isfinite(values[key]), key
    assert values["n_real"] == values["n_fake"] > 0 and first.synthetic == "eval-pix2pixhd-r1-e6"

    # roi_mse / roi_mae by hand: the inclusive box rows BOX[2]..BOX[3], cols BOX[4]..BOX[5] of the lesion slices
    real = load_selection(selection_of(store), "real")
    fake = load_selection(selection_of(store).replace("?", f"?synthetic={first.synthetic}&"), "fake")
    z0, z1, r0, r1, c0, c1 = BOX
    inside = [i for i, k in enumerate(real.meta["slice"]) if z0 <= k <= z1]
    assert 0 < len(inside) < len(real) and values["n_roi"] == len(inside)  # margin slices have no box
    diffs = [fake.images[i][r0:r1 + 1, c0:c1 + 1] - real.images[i][r0:r1 + 1, c0:c1 + 1] for i in inside]
    assert values["roi_mse"] == pytest.approx(np.mean([np.mean(d ** 2) for d in diffs]), rel=1e-9)
    assert values["roi_mae"] == pytest.approx(np.mean([np.mean(np.abs(d)) for d in diffs]), rel=1e-9)

    # the same checkpoint again: the real features come from the cache, the numbers are identical
    again = evaluate_checkpoint(str(ckpt), selection_of(store), CONFIG, feature_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert again == values

    # the untrained generator is worse on every ranked metric
    worse = evaluate_checkpoint(str(untrained), selection_of(store), CONFIG, feature_cache=cache, roi=False)
    assert (cache.hits, cache.misses) == (2, 1) and "roi_mse" not in worse
    assert worse["fid_img"] > values["fid_img"] and worse["mse"] > values["mse"] and worse["ssim"] < values["ssim"]


def test_dataset_version_checked(trained):
    store, (_, ckpt) = trained
    other = "dsv1:" + "c" * 64
    with pytest.raises(CheckpointMismatchError, match=r"dataset version dsv1:.*" + other):
        evaluate_checkpoint(str(ckpt), selection_of(store), CONFIG, expect_dataset_version=other)


def test_real_set_key_names_the_data_and_the_selection(trained):
    store, _ = trained
    key = real_set_key(selection_of(store))
    version, text = key.split("|", 1)
    assert version.startswith("dsv1:") and "split=val" in text and "slices=lesion" in text
    assert real_set_key(selection_of(store).replace("split=val", "split=train")).split("|")[0] != version


def test_eval_set_name_is_a_store_name():
    assert eval_set_name("pix2pixhd", "r1", 12) == "eval-pix2pixhd-r1-e12"
    long = eval_set_name("pix2pixhd", "x" * 60, 7)
    assert len(long) <= 64 and long.endswith("-e7") and long != eval_set_name("pix2pixhd", "x" * 59 + "y", 7)


def test_feature_space_metrics_read_the_warmed_cache(trained, tmp_path):
    from breastflow.evaluate.checkpoint import warm_feature_cache

    store, (_, ckpt) = trained
    config = EvaluationConfig(metrics=("nn_accuracy", "frd"), feature_space="radiomics", allow_clipping=True,
                              paired=True, by=())
    real = load_selection(selection_of(store), "real")
    key = real_set_key(selection_of(store), real)
    cache = FeatureCache(str(tmp_path / "features"))
    assert warm_feature_cache(real, config, cache, key) == ["radiomics"]  # FRD's extractor = the feature space
    assert (cache.hits, cache.misses) == (0, 1)  # one extraction serves both metrics
    values = evaluate_checkpoint_details(str(ckpt), selection_of(store), config, feature_cache=cache,
                                         dataset_key=key, roi=False).values
    # FRD and nn_accuracy share the context's radiomics features: one cache read, no extraction
    assert (cache.hits, cache.misses) == (1, 1) and 0.0 <= values["nn_accuracy"] <= 1.0
    assert values == evaluate_checkpoint(str(ckpt), selection_of(store), config, roi=False)  # uncached: same
