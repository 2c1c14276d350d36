"""Real-feature cache: content keys, atomic writes, a sweep extracts real features once."""

from __future__ import annotations

import numpy as np
import pytest

from breastflow.metrics.cache import FeatureCache, content_key
from breastflow.metrics.frechet import frechet_distance
from breastflow.metrics.protocols import PROTOCOLS


def _key(**over):
    parts = {"dataset": "sha-abc", "extractor": "inception", "weights": "w1", "protocol": PROTOCOLS.get("standard"),
             "data_range": 255.0}  # fmt: skip
    parts.update(over)
    return content_key(**parts)


@pytest.mark.parametrize(
    "change",
    [{"dataset": "sha-abd"}, {"extractor": "radimagenet"}, {"weights": "w2"},
     {"protocol": PROTOCOLS.get("paper-003")}, {"data_range": 65535.0}],
)  # fmt: skip
def test_every_part_changes_the_key(change):
    assert _key() == _key()
    assert _key(**change) != _key()


def test_get_or_compute_runs_compute_once(tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"))
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6.0).reshape(2, 3)

    a = cache.get_or_compute(_key(), compute)
    b = FeatureCache(str(tmp_path / "cache")).get_or_compute(_key(), compute)  # a new process would see the file
    np.testing.assert_array_equal(a, b)
    assert len(calls) == 1
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".tmp-")]  # temp files renamed


def test_rejects_non_content_keys(tmp_path):
    with pytest.raises(ValueError, match="sha256"):
        FeatureCache(str(tmp_path)).get("my-run-name")


def test_checkpoint_sweep_extracts_real_features_once(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (2, 32, 32)).astype(np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-40, 40, real.shape), 0, 255).astype(np.uint8)
    cache = FeatureCache(f"file://{tmp_path}/feats")
    # two checkpoints with the same output: the second FID goes through the cached real
    # features and must equal the first, computed from freshly extracted ones
    fids = [frechet_distance(real, fake, cache=cache, data_range=255) for _ in range(2)]
    assert (cache.misses, cache.hits) == (1, 1)
    assert fids[0] > 1.0
    assert fids[1] == pytest.approx(fids[0], rel=1e-9)
    assert len(list((tmp_path / "feats").glob("*.npy"))) == 1


@pytest.mark.integration
def test_cache_on_s3_endpoint(monkeypatch):
    import s3fs

    from breastflow.store.local_s3 import local_s3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with local_s3(set_env=False) as s3:
        opts = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3.endpoint_url},
                "skip_instance_cache": True}  # fmt: skip
        s3fs.S3FileSystem(**opts).mkdir("feats")
        cache = FeatureCache("s3://feats/real", storage_options=opts)
        arr = np.random.default_rng(0).normal(size=(4, 8))
        calls = []
        first = cache.get_or_compute(_key(), lambda: calls.append(1) or arr)
        second = FeatureCache("s3://feats/real", storage_options=opts).get_or_compute(_key(), lambda: calls.append(1) or arr)
        np.testing.assert_array_equal(first, second)
        assert len(calls) == 1
        names = [p.rsplit("/", 1)[-1] for p in s3fs.S3FileSystem(**opts).ls("feats/real")]
        assert sorted(names) == sorted([f"{_key()}.npy", f"{_key()}.json"])
