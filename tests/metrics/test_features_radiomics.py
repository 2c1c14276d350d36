"""``radiomics`` / ``radiomics-v0``: FRD equals frd-score v1 / v0 on the same images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from breastflow.metrics.features import extract_features
from breastflow.metrics.features.radiomics import (
    extract_radiomics_features,
    frd_from_features,
)
from breastflow.metrics.frechet import frechet_distance

frd = pytest.importorskip("frd_score.frd")


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("frd")
    sets = []
    for name, slope in (("real", 100), ("fake", 40)):
        (root / name).mkdir()
        imgs = []
        for i in range(6):
            img = (rng.random((40, 40)) * 120 + np.linspace(0, slope, 40)[None]).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i:02d}.png")
            imgs.append(img)
        sets.append(np.stack(imgs))
    return root, sets[0], sets[1]


@pytest.mark.parametrize(("extractor", "version"), [("radiomics-v0", "v0"), ("radiomics", "v1")])
def test_matches_frd_score(image_sets, extractor, version):
    root, real, fake = image_sets
    ours = frechet_distance(real, fake, extractor=extractor)
    ref = frd.compute_frd([str(root / "real"), str(root / "fake")], frd_version=version, num_workers=1)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_process_pool_gives_the_same_features(image_sets, monkeypatch):
    _, real, _ = image_sets
    serial = extract_features(real[:4], "radiomics-v0")
    monkeypatch.setenv("BREASTFLOW_RADIOMICS_WORKERS", "2")
    parallel = extract_features(real[:4], "radiomics-v0")
    np.testing.assert_array_equal(serial, parallel)
    assert serial.shape[0] == 4 and serial.shape[1] > 90


@pytest.fixture(scope="module")
def dask_client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.mark.integration
@pytest.mark.parametrize("chunk_size", [None, 4])
def test_dask_cluster_gives_the_same_features_in_order(image_sets, dask_client, chunk_size):
    _, real, fake = image_sets
    serial = extract_features(real, "radiomics-v0")
    distributed = extract_radiomics_features(real, "radiomics-v0", client=dask_client, chunk_size=chunk_size)
    np.testing.assert_array_equal(distributed, serial)
    assert serial.shape == (6, serial.shape[1]) and not np.array_equal(serial[0], serial[1])
    fake_features = extract_radiomics_features(fake, "radiomics-v0", client=dask_client)
    # FRD from cluster features equals the end-to-end serial FRD
    assert frd_from_features(distributed, fake_features, "radiomics-v0") == frechet_distance(
        real, fake, extractor="radiomics-v0")


def test_dask_path_rejects_bad_arguments():
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        extract_radiomics_features(np.zeros((2, 8, 8)), "radiomics-v0", chunk_size=0)
    with pytest.raises(ValueError, match="not a radiomics extractor"):
        extract_radiomics_features(np.zeros((2, 8, 8)), "inception")


def test_rejects_rgb_and_nan():
    with pytest.raises(ValueError, match="single-channel"):
        extract_features(np.zeros((2, 3, 16, 16)), "radiomics")
    with pytest.raises(ValueError, match="NaN"):
        extract_features(np.full((2, 16, 16), np.nan), "radiomics")
