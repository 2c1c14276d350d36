"""``inception`` extractor: identical to the packaged TorchScript FID Inception; protocols."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from breastflow.metrics.features import (
    EXTRACTORS,
    WeightsNotFoundError,
    build_extractor,
    extract_features,
)
from breastflow.metrics.features.inception import packaged_inception_path
from breastflow.metrics.frechet import features_to_frechet, frechet_distance
from breastflow.metrics.protocols import (
    PROTOCOLS,
    IntensityWindow,
    Protocol,
    apply_protocol,
)
from breastflow.registry import RegistryError


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 4096, (3, 64, 80)).astype(np.uint16)


@pytest.fixture(scope="module")
def feats(images) -> np.ndarray:
    return extract_features(images, "inception", data_range=4095)


def test_equals_torchscript_model(images, feats):
    model = torch.jit.load(str(packaged_inception_path()), map_location="cpu").eval()
    x = torch.from_numpy(images.astype(np.float32) / 4095)[:, None]
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
    x = x.clamp(0, 1).expand(-1, 3, -1, -1) * 2 - 1
    with torch.inference_mode():
        ref = model(x).double().numpy()
    assert feats.shape == (3, 2048) and feats.dtype == np.float64
    np.testing.assert_allclose(feats, ref, rtol=1e-5, atol=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_differs_from_dark_images(images, feats):
    assert features_to_frechet(feats, feats) == pytest.approx(0, abs=1e-6)
    real, dark = images[:2], images[:2] // 8  # two images per set: the fewest with a covariance
    fid = frechet_distance(real, dark, data_range=4095)
    assert fid > 1.0
    assert fid == pytest.approx(features_to_frechet(feats[:2], extract_features(dark, "inception", data_range=4095)))


def test_protocols_are_recorded_and_differ():
    std, paper = PROTOCOLS.get("standard"), PROTOCOLS.get("paper-003")
    assert paper.size == 224 and paper.intensity is IntensityWindow.PER_IMAGE_MINMAX
    assert Protocol.model_validate_json(paper.model_dump_json()) == paper
    x = torch.tensor([[[[100.0, 300.0], [200.0, 300.0]]]])
    out_std = apply_protocol(x, std, native_size=2, data_range=1000.0)
    out_paper = apply_protocol(x, paper, native_size=224, data_range=None)
    assert out_std.shape == (1, 3, 2, 2)
    assert out_std[0, 0, 0, 0].item() == pytest.approx(0.1)
    assert out_paper.min().item() == pytest.approx(0.0, abs=1e-3)  # per-image min-max
    assert out_paper.max().item() == pytest.approx(1.0, abs=1e-3)


def test_unknown_names_suggest_nearest():
    with pytest.raises(RegistryError, match="inception"):
        build_extractor("incepton")
    with pytest.raises(RegistryError, match="paper-003"):
        PROTOCOLS.get("paper003")
    assert {"inception", "radimagenet", "radiomics", "radiomics-v0"} <= set(EXTRACTORS.names())


def test_missing_replacement_weights(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nope.pt"):
        build_extractor("inception", weights=tmp_path / "nope.pt")


def test_batching_does_not_change_features(images, feats):
    f2 = extract_features(images, "inception", data_range=4095, batch_size=1)
    np.testing.assert_allclose(feats, f2, rtol=1e-4, atol=1e-5)
