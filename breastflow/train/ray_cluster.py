"""Connecting to Ray: a local instance by default, an existing cluster when ``RAY_ADDRESS`` is set.

Ray 2.60 turns token authentication on for every new local cluster (and writes
``~/.ray/auth_token``); without the token each dashboard ``/api`` call answers
401. breastflow's local default is ``RAY_AUTH_MODE=disabled`` for the cluster
and its clients, with usage statistics off and the node on loopback
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps Ray from rewriting 127.0.0.1 to
the machine's address). Values already set in the environment win, so a
cluster that uses tokens is reached by exporting ``RAY_AUTH_MODE=token`` and the
token. See ``docs/train.md`` and ``infra/ray/``.
"""

from __future__ import annotations

import os
import socket

#: environment defaults of a local breastflow Ray instance (and of its clients)
LOCAL_RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}
#: variables the workers need to reach the store (passed on through the runtime environment)
STORAGE_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
               "AWS_DEFAULT_REGION", "AWS_REGION", "BREASTFLOW_STORAGE_OPTIONS")


class RayClusterError(RuntimeError):
    """The Ray cluster named by ``RAY_ADDRESS`` cannot be reached."""


def storage_env() -> dict[str, str]:
    """The storage variables of this process that Ray workers need (endpoint, credentials)."""
    return {k: os.environ[k] for k in STORAGE_ENV if os.environ.get(k)}


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port`` addresses; None for ``auto``/``local``."""
    text = address.split("://", 1)[-1].strip().rstrip("/")
    if text in ("auto", "local", "") or ":" not in text:
        return None
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens at ``address``.

    Raises:
        RayClusterError: the TCP connection is refused or times out.
    """
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as err:
        raise RayClusterError(
            f"cannot reach the Ray cluster at RAY_ADDRESS={address} ({err.strerror or err}); start its head "
            "(infra/ray/start_head.sh), fix the address, or unset RAY_ADDRESS to train on a local Ray instance"
        ) from err


def apply_ray_env() -> None:
    """Set :data:`LOCAL_RAY_ENV` where the environment does not set them; call before ``import ray``
    (Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` when it is imported)."""
    for key, value in LOCAL_RAY_ENV.items():
        os.environ.setdefault(key, value)


def init_ray(address: str | None = None, include_dashboard: bool | None = None, num_cpus: int | None = None) -> bool:
    """Connect to Ray once: the cluster at ``address``/``RAY_ADDRESS``, else a new local instance.

    Args:
        address: cluster address (``host:port`` of the GCS, ``ray://host:10001``, ``auto``);
            default ``RAY_ADDRESS`` from the environment, else a local instance.
        include_dashboard: start the dashboard with a local instance (Ray's default: when installed).
        num_cpus: CPUs of a local instance (default: all).

    Returns:
        True when this call started Ray (the caller should ``ray.shutdown()``), False when it was running.

    Raises:
        RayClusterError: ``address`` cannot be reached.
    """
    apply_ray_env()
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    runtime_env = {"env_vars": storage_env()}
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            raise RayClusterError(f"cannot connect to the Ray cluster at RAY_ADDRESS={address}: {err}") from err
        return True
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=include_dashboard,
             dashboard_host="127.0.0.1", num_cpus=num_cpus, runtime_env=runtime_env)
    return True
