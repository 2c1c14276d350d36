"""Fixtures of the training tests: one local Ray instance per module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory) -> Iterator[None]:
    """One local Ray instance for the module: auth off, loopback, no usage stats, HOME in a temp dir."""
    import ray

    home = tmp_path_factory.mktemp("ray-home")
    settings = {"HOME": str(home), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    saved = {k: os.environ.get(k) for k in [*settings, "RAY_ADDRESS"]}
    os.environ.update(settings)
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(address="local", num_cpus=4, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False)
    try:
        yield None
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
