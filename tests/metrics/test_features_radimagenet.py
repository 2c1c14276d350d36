"""``radimagenet``: Keras-layout h5 with random weights -> loading, shapes, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from breastflow.metrics.features import WeightsNotFoundError, extract_features
from breastflow.metrics.features.radimagenet import (
    ENV_VAR,
    KerasInceptionV3,
    convert_h5_to_state_dict,
    keras_h5_to_state_dict,
)

KERAS_NOTOP_PARAMS = 21_802_784  # keras.applications.InceptionV3(include_top=False).count_params()


def write_keras_h5(path: Path, seed: int = 0, offset: int = 0, full_model: bool = False) -> list[np.ndarray]:
    """Write InceptionV3-notop weights in Keras' h5 layout (layer groups named conv2d[_k] /
    batch_normalization[_k] with ``weight_names`` attributes); return the kernels in creation order."""
    rng = np.random.default_rng(seed)
    units = KerasInceptionV3().conv_layers()
    kernels = []
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        names = ["input_1"]
        root.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        layers = []
        for i, unit in enumerate(units):
            k = i + offset
            suffix = "" if k == 0 else f"_{k}"
            out_c, in_c, kh, kw = unit.conv.weight.shape
            kernel = (rng.standard_normal((kh, kw, in_c, out_c)) * np.sqrt(2.0 / (kh * kw * in_c))).astype(np.float32)
            kernels.append(kernel)
            bn = {
                "beta": rng.normal(0, 0.1, out_c), "moving_mean": rng.normal(0, 0.1, out_c),
                "moving_variance": rng.uniform(0.5, 1.5, out_c),
            }  # fmt: skip
            layers.append((f"conv2d{suffix}", {"kernel": kernel}))
            layers.append((f"batch_normalization{suffix}", {k2: v.astype(np.float32) for k2, v in bn.items()}))
        for name, weights in reversed(layers):  # file order must not matter, the name suffix does
            g = root.create_group(name)
            g.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in weights]
            for w, arr in weights.items():
                g.create_dataset(f"{name}/{w}:0", data=arr)
            names.append(name)
        root.attrs["layer_names"] = [n.encode() for n in names]
    return kernels


@pytest.fixture(scope="module")
def h5_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rad") / "RadImageNet-InceptionV3_notop.h5"
    write_keras_h5(path)
    return path


def test_architecture_matches_keras_parameter_count():
    model = KerasInceptionV3()
    n = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert n == KERAS_NOTOP_PARAMS
    assert len(model.conv_layers()) == 94
    assert model.feature_map(torch.zeros(1, 3, 224, 224)).shape == (1, 2048, 5, 5)


@pytest.mark.parametrize(("offset", "full_model"), [(0, False), (95, True)])
def test_weights_land_in_creation_order(tmp_path, offset, full_model):
    path = tmp_path / "w.h5"
    kernels = write_keras_h5(path, seed=1, offset=offset, full_model=full_model)
    model = KerasInceptionV3()
    model.load_state_dict(keras_h5_to_state_dict(path, model))
    for unit, kernel in zip(model.conv_layers(), kernels):
        np.testing.assert_array_equal(unit.conv.weight.detach().numpy(), kernel.transpose(3, 2, 0, 1))


def test_extract_shape_determinism_and_converted_state_dict(h5_file, tmp_path):
    imgs = np.random.default_rng(0).integers(0, 65536, (2, 96, 80)).astype(np.uint16)
    f1 = extract_features(imgs, "radimagenet", weights=h5_file, data_range=65535)
    assert f1.shape == (2, 2048) and np.isfinite(f1).all() and f1.std() > 0
    pt = tmp_path / "radimagenet.pt"
    convert_h5_to_state_dict(h5_file, pt)
    # a second build from the converted file, one image per batch: same features (deterministic, batch-independent)
    f2 = extract_features(imgs, "radimagenet", weights=pt, data_range=65535, batch_size=1)
    np.testing.assert_allclose(f2, f1, rtol=1e-4, atol=1e-5)


def test_missing_file_names_it(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(WeightsNotFoundError, match="RadImageNet-InceptionV3_notop.h5"):
        extract_features(np.zeros((2, 32, 32)), "radimagenet", data_range=1.0)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent.h5"))
    with pytest.raises(WeightsNotFoundError, match="absent.h5"):
        extract_features(np.zeros((2, 32, 32)), "radimagenet", data_range=1.0)


def test_wrong_file_layout_is_rejected(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("conv2d")
        g.attrs["weight_names"] = [b"conv2d/kernel:0"]
        g.create_dataset("conv2d/kernel:0", data=np.zeros((3, 3, 3, 8), np.float32))
        f.attrs["layer_names"] = [b"conv2d"]
    with pytest.raises(ValueError, match="expected 94 conv"):
        keras_h5_to_state_dict(path)
