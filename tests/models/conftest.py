"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_helpers import save_torchvision_vgg19


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init VGG19 state dict in torchvision's layout (real weights are not obtainable here)."""
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    save_torchvision_vgg19(path)
    return path
