"""The demo's utility step (step 8) on the tiny segmentation store: the skip guard and the Wilcoxon floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon
from segmentation_helpers import build_segmentation_store

from breastflow.demo_utility import DemoUtility, min_wilcoxon_p, run_utility_step
from breastflow.segmentation.cases import pool_cases, segmentation_cases, test_cases


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_segmentation_store(str(tmp_path_factory.mktemp("demo-utility") / "store")).url


def test_too_few_test_cases_skip_the_row_with_the_reason_before_any_work(store: str) -> None:
    cases = segmentation_cases(store, test_splits=("val", "test"))
    n_test = len(test_cases(cases))
    timings: dict[str, float] = {}
    lines: list[str] = []
    # the checkpoint does not exist: a skipped step must not touch it (nothing generated, nothing trained)
    step = run_utility_step(store, "pix2pixhd", "run-x", "/nonexistent/epoch_000004",
                            DemoUtility(epochs=1, min_test_cases=n_test + 1), lines.append, timings)
    assert step.result is None and not step.generated and timings == {} and lines == []
    assert f"left {n_test} tumour case(s) in the val+test split(s)" in step.skipped
    assert step.test == n_test and step.pool == len(pool_cases(cases))
    assert step.synthetic == "run-x-e4-all"


def test_more_folds_than_pool_patients_skip_the_row(store: str) -> None:
    pool = pool_cases(segmentation_cases(store, test_splits=("val", "test")))
    step = run_utility_step(store, "pix2pixhd", "run-x", "/nonexistent/epoch_000004",
                            DemoUtility(epochs=1, folds=len(pool) + 1, min_test_cases=1), lambda _: None, {})
    assert step.result is None and f"{len(pool)} pool case(s) for {len(pool) + 1} folds" == step.skipped


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_min_wilcoxon_p_is_scipys_exact_p_of_all_positive_differences(n: int) -> None:
    diffs = np.arange(1, n + 1, dtype=float)  # every difference positive, no ties: the most extreme sample
    assert min_wilcoxon_p(n) == pytest.approx(wilcoxon(diffs, method="exact").pvalue, rel=1e-12)
    assert math.isnan(min_wilcoxon_p(0))
