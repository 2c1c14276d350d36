"""Fixtures of the training tests: one local Ray instance per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ray_local import local_ray


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory) -> Iterator[None]:
    """One local Ray instance for the module (4 CPUs, no dashboard)."""
    with local_ray(tmp_path_factory.mktemp("ray-home"), num_cpus=4):
        yield None
