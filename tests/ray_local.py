"""One local Ray instance for a test module: auth off, loopback, no usage stats, HOME in a temp dir.

Ray start-up costs 25-60 s on the 2-core CI machine, so a module starts one
(a module-scoped fixture calling :func:`local_ray`) and shares it. The
environment is restored and Ray shut down on exit, also on error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: what every local test instance sets (Ray 2.60 turns token auth on by default; see shared/ENVIRONMENT.md)
RAY_TEST_SETTINGS = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@contextmanager
def ray_settings(home: Path | None = None) -> Iterator[None]:
    """The settings of a local test instance (and ``HOME`` when given), without starting Ray: for code
    under test that starts (and stops) Ray itself. ``ray.shutdown()`` on exit is the safety net."""
    import ray

    from breastflow.environment import scoped_env

    settings = {**({"HOME": str(home)} if home is not None else {}), **RAY_TEST_SETTINGS, "RAY_ADDRESS": None}
    with scoped_env(settings):
        try:
            yield None
        finally:
            ray.shutdown()


@contextmanager
def local_ray(home: Path, num_cpus: int, dashboard: bool = False) -> Iterator[None]:
    """Start a local Ray with ``num_cpus`` CPUs (and a dashboard on a free loopback port when asked)."""
    import ray

    extra: dict = {"include_dashboard": False}
    if dashboard:
        from breastflow.store.local_s3 import free_port

        extra = {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": free_port()}
    with ray_settings(home):
        ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", log_to_driver=False, **extra)
        yield None
