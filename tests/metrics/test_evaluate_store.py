"""``evaluate`` on store selections: values equal direct computation on pydicom-read slices, fairness, privacy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from phantom_store import PhantomStore, build_phantom_store
from skimage.metrics import mean_squared_error, structural_similarity

from breastflow.cli import main
from breastflow.data.image_sets import InputError, resize_images
from breastflow.data.selection_loading import load_selection
from breastflow.metrics import names
from breastflow.evaluate.sets import evaluate_inputs
from breastflow.evaluate.config import EvaluationConfig
from breastflow.evaluate.groups import DISTRIBUTION, PER_CASE
from breastflow.metrics.fairness import ALL_GROUP
from breastflow.metrics.nn_accuracy import nn_accuracy
from breastflow.metrics.privacy import DistanceSpace, memorisation_distances
from breastflow.evaluate.report import write_report


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> PhantomStore:
    return build_phantom_store(tmp_path_factory.mktemp("evalstore"))


@pytest.fixture(scope="session")
def paired_result(phantom):
    """post_1 (real) vs pre (a no-contrast baseline 'generator') on every 2nd slice, paired by (study, slice)."""
    config = EvaluationConfig(metrics=(names.MSE, names.SSIM, "moments", names.NN_ACCURACY), paired=True,
                              resize=48, min_group_size=5)
    return evaluate_inputs(phantom.selection("series=post_1&slices=every&every=2"),
                           phantom.selection("series=pre&slices=every&every=2"), config)


def test_paired_values_equal_skimage_on_pydicom_slices(phantom, paired_result):
    mse, ssim, real_max = [], [], 0.0
    pairs = []
    for study_id, study in sorted(phantom.study_of.items(), key=lambda kv: kv[1]):
        numbers = phantom.series_numbers(study_id)
        post = phantom.dicom_volume(study_id, numbers["post_1"]).astype(np.float64)
        pre = phantom.dicom_volume(study_id, numbers["pre"]).astype(np.float64)
        pairs += [(post[k], pre[k]) for k in range(0, len(post), 2)]
        real_max = max(real_max, float(post[::2].max()))
    for real, fake in pairs:
        mse.append(mean_squared_error(real, fake))
        ssim.append(structural_similarity(real, fake, data_range=real_max, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False))
    values = paired_result.values
    assert values["n_real"] == len(pairs) and values["data_range"] == real_max
    assert values[names.MSE] == pytest.approx(np.mean(mse), rel=1e-9)
    assert values[names.sd_name(names.MSE)] == pytest.approx(np.std(mse), rel=1e-9)
    assert values[names.SSIM] == pytest.approx(np.mean(ssim), abs=1e-6)
    np.testing.assert_allclose(paired_result.cases[names.SSIM], ssim, atol=1e-6)
    assert any("from real set" in n for n in paired_result.notes) and paired_result.data_range.source == "real set"


def test_fairness_groups_partition_the_set_and_match_direct_values(phantom, paired_result):
    table = paired_result.fairness
    n_total = int(paired_result.values["n_real"])
    assert set(table.grouping) == {ALL_GROUP, "vendor", "field_strength", "lesion_class"}
    for (kind, grouping), sub in table.groupby(["kind", "grouping"]):
        sizes = sub.drop_duplicates("group").n_real
        assert sizes.sum() == n_total, (kind, grouping)
    cases = paired_result.cases
    per_case = table[(table.kind == PER_CASE) & (table.grouping == "vendor") & (table.metric == names.SSIM)]
    for row in per_case.itertuples():
        assert row.value == pytest.approx(cases[cases.vendor == row.group][names.SSIM].mean(), rel=1e-12)
    # a distribution metric per group equals the metric computed on that group's images alone
    real = load_selection(phantom.selection("series=post_1&slices=every&every=2"))
    fake = load_selection(phantom.selection("series=pre&slices=every&every=2"))
    siemens = np.flatnonzero(real.meta.vendor.to_numpy() == "SIEMENS")
    direct = nn_accuracy(resize_images([real.images[i] for i in siemens], 48).reshape(len(siemens), -1),
                         resize_images([fake.images[i] for i in siemens], 48).reshape(len(siemens), -1))
    got = table[(table.kind == DISTRIBUTION) & (table.group == "SIEMENS") & (table.metric == names.NN_ACCURACY)]
    assert got.value.item() == pytest.approx(direct.to_dict()[names.NN_ACCURACY])
    small = table[(table.kind == DISTRIBUTION) & (table.n_real < 5)]
    assert len(small) and small.status.str.startswith("too small").all() and small.value.isna().all()


def test_privacy_check_and_report(phantom, paired_result, tmp_path):
    config = EvaluationConfig(metrics=("moments",), resize=32, privacy_features="radiomics-v0", privacy_quantile=0.1)
    train = phantom.selection("series=post_1&vendor=ge&slices=every&every=10")
    holdout = phantom.selection("series=post_1&vendor=siemens&slices=every&every=4")
    fake = phantom.selection("series=pre&slices=every&every=10")
    result = evaluate_inputs(phantom.selection("series=post_1&slices=every&every=10"), fake, config,
                             train=train, holdout=holdout)
    stacks = [resize_images(load_selection(s).images, 32) for s in (train, holdout, fake)]
    scale = result.values["data_range"]
    direct = memorisation_distances(*[s.reshape(len(s), -1) / scale for s in stacks], space=DistanceSpace.PIXELS,
                                    quantile=0.1)
    for key, value in direct.to_dict().items():
        assert result.values[key] == pytest.approx(value, rel=1e-9)
    assert f"{names.PRIVACY_CLOSE_SHARE}_features" in result.values
    files = write_report(result, tmp_path / "report")
    assert {p.name for p in files.plots} >= {"privacy_pixels.png", "privacy_features.png"}
    doc = json.loads(files.json.read_text())
    assert doc["privacy"]["feature_extractor"] == "radiomics-v0" and len(doc["privacy"]["closest_pairs"]) == 16
    assert doc["sources"]["train"].endswith("vendor=ge&slices=every&every=10&scale=raw")
    report = write_report(paired_result, tmp_path / "paired")
    assert "## Fairness: metrics per group" in report.markdown.read_text()
    assert (tmp_path / "paired" / "fairness.csv").exists() and (tmp_path / "paired" / "cases.csv").exists()
    with pytest.raises(InputError, match="both"):
        evaluate_inputs(phantom.selection("series=post_1"), fake, config, train=train)


def test_folder_of_synthetic_volumes_pairs_with_a_lesion_selection(phantom, tmp_path):
    real = load_selection(phantom.selection("series=post_1&slices=lesion"))
    folder = tmp_path / "synthetic"
    folder.mkdir()
    for study in real.meta.study.unique():
        np.save(folder / f"{study}.npy", np.asarray(load_selection(
            phantom.selection(f"series=post_1&study={study}")).images))
    config = EvaluationConfig(metrics=(names.MSE,), paired=True, by=("lesion_class",))
    result = evaluate_inputs(phantom.selection("series=post_1&slices=lesion"), str(folder), config)
    assert result.values[names.MSE] == 0.0 and result.values["n_real"] == len(real)
    assert any("were not used" in n for n in result.notes)
    assert set(result.fairness.group) == {ALL_GROUP, "malignant", "benign", "none"}


@pytest.mark.parametrize("real, fake, message", [
    ("series=post_1&slices=lesion", "series=pre", "has no real counterpart"),
    ("series=post_1", "series=pre&slices=lesion", "no synthetic counterpart"),
    ("series=post_1&split=test", "series=pre", "empty selection"),
])
def test_mismatched_selections_are_clear_errors(phantom, real, fake, message):
    with pytest.raises(InputError, match=message):
        evaluate_inputs(phantom.selection(real), phantom.selection(fake),
                        EvaluationConfig(metrics=(names.MSE,), paired=True))


def test_unkeyed_folder_cannot_pair_with_a_selection_and_groupings_are_checked(phantom, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((8, 8)))
    with pytest.raises(InputError, match="not named by study and slice"):
        evaluate_inputs(phantom.selection("series=post_1&slices=lesion"), str(folder),
                        EvaluationConfig(metrics=(names.MSE,), paired=True))
    with pytest.raises(InputError, match="unknown fairness grouping 'scanner'"):
        evaluate_inputs(phantom.selection("series=post_1&slices=lesion"), phantom.selection("series=pre&slices=lesion"),
                        EvaluationConfig(metrics=(names.MSE,), paired=True, by=("scanner",)))


def test_cli_evaluate_on_store_selections(phantom, tmp_path):
    out = tmp_path / "values.json"
    r = CliRunner().invoke(main, ["evaluate", phantom.selection("series=post_1&slices=lesion"),
                                  phantom.selection("series=pre&slices=lesion"), "--paired", "--metrics", "mse,ssim",
                                  "--by", "vendor", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "Per group" in r.output and "SIEMENS" in r.output
    doc = json.loads(out.read_text())
    assert {row["grouping"] for row in doc["fairness"]} == {ALL_GROUP, "vendor"}
    r = CliRunner().invoke(main, ["evaluate", phantom.selection("series=post_7"), phantom.selection("series=pre")])
    assert r.exit_code == 1 and "unknown series role 'post_7'" in r.output
