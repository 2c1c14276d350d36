"""compare_with_baselines: an identity generator scores as the identity baseline; lesion boxes restrict the MAE."""

from __future__ import annotations

import pytest
from generate_helpers import VERSION, build_tiny_store, identity_model

from breastflow.data.datasets.paired import PairedPhasesSpec
from breastflow.generate.compare import compare_with_baselines, lesion_region
from breastflow.generate.config import GenerateSplit
from breastflow.generate.run import GeneratorSource, generate_with_model
from breastflow.store.fs import StoreLocation

SOURCE = GeneratorSource(checkpoint="test", model="pix2pixhd", run="r1", epoch=0, step=0, dataset_version=VERSION)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    store = build_tiny_store(str(tmp_path_factory.mktemp("cmp") / "store"))
    spec = PairedPhasesSpec(targets=("post_1",), intensity={"clip_max": 4.0})
    generate_with_model(identity_model(), spec, StoreLocation.from_url(store), GenerateSplit.TEST, "ident", SOURCE)
    return store


def test_identity_generator_scores_as_the_identity_baseline(store):
    table = compare_with_baselines(store, "ident", ["stu-c", "stu-d"], ["stu-a", "stu-b"])
    assert list(table.index) == ["model", "identity", "linear"]
    model, identity, linear = table.loc["model"], table.loc["identity"], table.loc["linear"]
    # the identity generator returns pre within one raw unit: same figures up to that rounding
    assert model.mae_lesion == pytest.approx(identity.mae_lesion, abs=2e-3)
    assert model.mae == pytest.approx(identity.mae, abs=2e-3)
    # the builder's lesions enhance 40 % a phase, tissue 5 %: a global linear map beats identity in the boxes
    assert linear.mae_lesion < identity.mae_lesion
    assert model.lesion_voxels == 2 * 2 * 6 * 6 == identity.lesion_voxels


def test_lesion_region_is_the_inclusive_box(store):
    region = lesion_region(StoreLocation.from_url(store), "stu-c", (6, 24, 24))
    assert region.sum() == 2 * 6 * 6 and region[2, 8, 9] and region[3, 13, 14] and not region[4, 8, 9]
    assert not lesion_region(StoreLocation.from_url(store), "stu-nope", (2, 2, 2)).any()


def test_needs_both_sets(store):
    with pytest.raises(ValueError, match="need held-out and training studies"):
        compare_with_baselines(store, "ident", [], ["stu-a"])
