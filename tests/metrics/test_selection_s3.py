"""Store selections on ``s3://`` (real moto endpoint on 127.0.0.1) read exactly what the local store holds."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from phantom_store import KEY, PhantomStore, build_phantom_store

from breastflow.data.selection import SelectionError
from breastflow.data.selection_loading import load_selection
from breastflow.metrics import names
from breastflow.evaluate.sets import evaluate_inputs
from breastflow.evaluate.config import EvaluationConfig
from breastflow.store.local_s3 import local_s3

pytestmark = pytest.mark.integration

QUERIES = [
    "series=post_1",
    "series=post_1&slices=lesion",
    "series=pre&split=train,val,test&slices=every&every=3",
    "series=post_1&vendor=ge&slices=every&every=2&scale=per-case",
    "series=pre&annotated=true&slices=lesion&margin=0.2&scale=per-case",
]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> PhantomStore:
    return build_phantom_store(tmp_path_factory.mktemp("evalstore"))


@pytest.fixture(scope="module")
def s3_store(phantom):
    """The phantom's cohort ingested again, with the same pseudonym key, into ``s3://<bucket>/store``."""
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.ingest.report import ExitStatus

    with local_s3(set_env=False) as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        mp.setenv("BREASTFLOW_PSEUDONYM_KEY", KEY)
        bucket = f"sel-{uuid.uuid4().hex[:10]}"
        server.make_bucket(bucket)
        url = f"s3://{bucket}/store"
        report = run_ingest(str(phantom.cohort / "dicom"), url,
                            IngestConfig(cluster=ClusterConfig(workers=1, processes=False)))
        assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
        yield url


@pytest.mark.parametrize("query", QUERIES)
def test_s3_selection_equals_local_selection(phantom, s3_store, query):
    local = load_selection(phantom.selection(query), "real")
    remote = load_selection(f"{s3_store}?{query}", "real")
    assert remote.source.startswith(s3_store + "?") and local.source.startswith("store://")
    assert remote.names == local.names and len(local.names) > 0
    for name, a, b in zip(local.names, local.images, remote.images, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    pd.testing.assert_frame_equal(remote.meta, local.meta)


def test_s3_selection_errors_name_the_problem(s3_store):
    with pytest.raises(SelectionError, match="unknown series role 'post_9'"):
        load_selection(f"{s3_store}?series=post_9")
    with pytest.raises(SelectionError, match="did you mean 'slices'"):
        load_selection(f"{s3_store}?series=pre&slice=lesion")


def test_evaluate_on_s3_selections_equals_local(phantom, s3_store):
    config = EvaluationConfig(metrics=(names.MSE, names.MAE, names.PSNR, names.SSIM), paired=True, resize=48,
                              min_group_size=5)
    real_q, fake_q = "series=post_1&slices=every&every=2", "series=pre&slices=every&every=2"
    local = evaluate_inputs(phantom.selection(real_q), phantom.selection(fake_q), config)
    remote = evaluate_inputs(f"{s3_store}?{real_q}", f"{s3_store}?{fake_q}", config)
    assert remote.real_names == local.real_names and remote.fake_names == local.fake_names
    assert set(remote.values) == set(local.values)
    for key, value in local.values.items():
        assert remote.values[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    assert local.values[names.MSE] > 0 and local.values["n_real"] == len(local.real_names)
    for metric in (names.MSE, names.MAE, names.PSNR, names.SSIM):
        np.testing.assert_array_equal(remote.cases[metric].to_numpy(), local.cases[metric].to_numpy())
