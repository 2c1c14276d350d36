"""Following a training run while it trains: per-epoch losses as rank 0 writes them, the Ray dashboard's address.

:func:`train_and_follow` wraps :func:`breastflow.train.launch.launch_training`
for orchestrators (the Prefect flow ``flows/train.py``; breastflow itself never
imports Prefect): a background thread polls the run's ``losses.csv`` and hands
each new epoch to a callback (a log line in the Prefect UI), the dashboard URL
is read from Ray once it is connected, and the result comes back with the final
losses and the last sample grid (:class:`FollowedRun`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from breastflow.store.fs import StoreLocation
from breastflow.train.checkpoint import SAMPLES_FILE
from breastflow.train.config import LOSSES_FILE, TrainResult, TrainRun
from breastflow.train.losses_log import read_losses
from breastflow.train.ray_cluster import apply_ray_env

log = logging.getLogger(__name__)
#: Ray's own override of the dashboard address (behind a proxy or port-forward)
DASHBOARD_OVERRIDE_ENV = "RAY_OVERRIDE_DASHBOARD_URL"
Notify = Callable[[str], None]


class FollowedRun(BaseModel):
    """A finished training run as an orchestrator reports it.

    Attributes:
        result: what :func:`~breastflow.train.launch.launch_training` returned.
        total_epochs: the run's planned epochs.
        model: the family trained.
        losses: every row of ``losses.csv`` (epoch, step, mean losses), oldest first.
        dashboard_url: the Ray dashboard (``http://host:port``); None when Ray ran without one,
            through a ``ray://`` client, or was not started (the run was already complete).
        samples: the last checkpoint's sample grid (path or URL); None without checkpoints.
    """

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    result: TrainResult
    total_epochs: int
    model: str
    losses: list[dict[str, float]] = Field(default_factory=list)
    dashboard_url: str | None = None
    samples: str | None = None

    @property
    def final_losses(self) -> dict[str, float]:
        """The last epoch's mean losses (without ``epoch``/``step``); ``{}`` before the first epoch."""
        if self.losses:
            row = self.losses[-1]
        else:
            row = {k: v for k, v in self.result.metrics.items() if isinstance(v, int | float)}
        return {k: float(v) for k, v in row.items() if k not in ("epoch", "step")}


def dashboard_url() -> str | None:
    """The Ray dashboard of the cluster this process is connected to, as ``http://host:port``.

    ``RAY_OVERRIDE_DASHBOARD_URL`` wins (Ray's own setting for proxies). None when Ray is
    not initialised, runs without the dashboard, or is reached through a ``ray://`` client.
    """
    apply_ray_env()  # before the first import of Ray in this process (it reads the loopback setting then)
    import ray

    if not ray.is_initialized():
        return None
    url = os.environ.get(DASHBOARD_OVERRIDE_ENV)
    if not url:
        try:  # what ray.init(...).address_info["webui_url"] returns, for a driver that did not keep it
            from ray._private import worker

            url = worker._global_node.webui_url if worker._global_node is not None else None
        except Exception as err:  # noqa: BLE001 - a missing dashboard never stops training
            log.debug("no Ray dashboard address: %s", err)
            return None
    if not url:
        return None
    return url if "://" in url else f"http://{url}"


def format_epoch(row: dict[str, float], total_epochs: int) -> str:
    """One log line per epoch: ``epoch 3/200 (step 120): d_total=0.41 g_total=2.3``."""
    losses = " ".join(f"{k}={v:.4g}" for k, v in sorted(row.items()) if k not in ("epoch", "step"))
    return f"epoch {int(row.get('epoch', 0))}/{total_epochs} (step {int(row.get('step', 0))}): {losses}"


class LossFollower:
    """Polls a run's ``losses.csv`` on a thread and hands each new epoch's row to ``on_epoch``.

    Rows already in the file when it starts (a resumed run) are skipped; an epoch trained
    again after a worker-group restart is handed over again with its new losses. Read errors
    (a store blip) are logged and retried at the next poll: following never stops a run.
    Use as a context manager; leaving it stops the thread and polls once more, so every
    epoch written before the run returned is handed over.

    Args:
        run: the run to follow.
        on_epoch: called with each new row (``epoch``, ``step``, one key per loss).
        interval_s: seconds between polls.
    """

    def __init__(self, run: TrainRun, on_epoch: Callable[[dict[str, float]], None], interval_s: float = 10.0) -> None:
        self.loc = StoreLocation.from_url(run.store)
        self.uri = self.loc.join(run.run_dir, LOSSES_FILE)
        self.on_epoch = on_epoch
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seen: dict[int, dict[str, float]] = {int(r["epoch"]): r for r in self._read() or [] if "epoch" in r}

    def _read(self) -> list[dict[str, float]] | None:
        try:
            return read_losses(self.uri, self.loc)
        except Exception as err:  # noqa: BLE001 - retried at the next poll
            log.warning("cannot read %s yet: %s", self.uri, err)
            return None

    def poll(self) -> int:
        """Hand over the rows not seen yet (new epochs, and epochs trained again with other losses); returns how many."""
        with self._lock:
            rows = self._read()
            if rows is None:
                return 0
            fresh = [r for r in rows if "epoch" in r and self._seen.get(int(r["epoch"])) != r]
            for row in fresh:
                try:
                    self.on_epoch(row)
                except Exception as err:  # noqa: BLE001 - a failing callback never stops a run
                    log.warning("loss callback failed: %s", err)
                self._seen[int(row["epoch"])] = row
            return len(fresh)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._loop, name="breastflow-loss-follower", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()


def last_samples(result: TrainResult) -> str | None:
    """The sample grid of the run's last checkpoint (``.../epoch_<N>/samples.png``), if it exists."""
    if not result.checkpoints:
        return None
    uri = f"{result.checkpoints[-1]}/{SAMPLES_FILE}"
    loc = StoreLocation.from_url(result.run_uri)
    fs = loc.filesystem()
    path = uri.split("://", 1)[1] if loc.remote else uri
    return uri if fs.exists(path) else None


def train_and_follow(run: TrainRun, notify: Notify | None = None, interval_s: float = 10.0,
                     include_dashboard: bool | None = None) -> FollowedRun:
    """Train ``run`` (:func:`~breastflow.train.launch.launch_training`) and follow it.

    Args:
        run: the validated run.
        notify: receives one line for the dashboard address and one per finished epoch
            (e.g. a Prefect run logger's ``info``); None: this module's logger.
        interval_s: seconds between polls of ``losses.csv``.
        include_dashboard: start the dashboard with a local Ray instance (Ray's default: when installed).

    Raises:
        What :func:`~breastflow.train.launch.launch_training` raises.
    """
    from breastflow.train.launch import launch_training

    say = notify or log.info
    found: dict[str, str | None] = {"dashboard": None}

    def connected() -> None:
        found["dashboard"] = dashboard_url()
        where = found["dashboard"] or "not running (no dashboard with this Ray instance)"
        say(f"run {run.run}: Ray connected, dashboard {where}; training {run.total_epochs} epochs "
            f"on {run.workers} worker(s){' with GPUs' if run.gpu else ''}")

    with LossFollower(run, lambda row: say(f"run {run.run}: {format_epoch(row, run.total_epochs)}"),
                      interval_s) as follower:
        result = launch_training(run, include_dashboard=include_dashboard, on_start=connected)
    losses = read_losses(follower.uri, follower.loc)
    return FollowedRun(result=result, total_epochs=run.total_epochs, model=run.model, losses=losses,
                       dashboard_url=found["dashboard"], samples=last_samples(result))
