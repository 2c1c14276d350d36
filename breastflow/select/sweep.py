"""Training sweeps: a Ray Tune ``Tuner`` over training configs, each trial a Ray Train run, ASHA on ``val_mae``.

:func:`sweep_training` samples configs from a :class:`~breastflow.select.sweep_space.SweepSpace`
on top of a base :class:`~breastflow.train.config.TrainRun`. Each trial is a Tune function
trainable that launches the training engine (:func:`breastflow.train.launch.make_trainer`,
a ``TorchTrainer``) as run ``<sweep>-t<k>``, so its checkpoints land in
``checkpoints/<model>/<sweep>-t<k>/`` like any run's. The engine's workers report the
epoch's metrics, with the validation metric (:mod:`breastflow.train.validation`,
``validate_every=1``), to Ray Train; Tune's ``TuneReportCallback`` (Ray Train V2) passes
them on to the trial, and ``ASHAScheduler`` (``time_attr="epoch"``, ``max_t`` = the base
config's epochs) stops trials whose metric at a rung (``grace_period * rf**k`` epochs) is
not in the best ``1/rf`` of the trials that reached it. A stopped trial keeps the
checkpoints it wrote.

The record (every trial's config, last and best metric, epochs, stopped early or not,
its run; the best trial, config and run) is written as JSON to
``sweeps/<model>/<sweep>.json`` in the store (:func:`breastflow.store.layout.sweep_file`);
Tune's own experiment state goes to ``sweeps/<model>/<sweep>/``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from breastflow.select.sweep_space import (
    SweepSpace,
    SweepSpaceError,
    build_space,
    read_space,
)
from breastflow.store import layout
from breastflow.store.fs import StoreLocation, atomic_write_bytes, exists, read_bytes
from breastflow.train.config import LOSSES_FILE, RUN_FILE, TrainRun
from breastflow.train.losses_log import read_losses
from breastflow.train.settings import build_train_run

log = logging.getLogger(__name__)

TIME_ATTR = "epoch"
#: CPU the trial (Tune function trainable) holds: it only drives its Train run, whose workers hold the CPUs
#: (Ray refuses a trial of zero resources)
TRIAL_CPU = 0.01


class SweepError(ValueError):
    """A sweep that cannot start (existing name, bad space for the base config ...); the message says why."""


class SweepConfig(BaseModel):
    """Settings of one sweep.

    Attributes:
        name: sweep name (``[a-z0-9_-]``); trial runs are ``<name>-t<k>``.
        samples: Tune's ``num_samples`` (with ``grid`` entries: repeats of the whole grid).
        metric, mode: what ASHA and the best trial go by (``val_mae``, lower is better).
        grace_period: epochs every trial runs before ASHA may stop it.
        reduction_factor: ASHA keeps the best ``1/reduction_factor`` at each rung.
        max_concurrent: trials at once (None: cluster CPUs // CPUs per trial, at least 1).
        seed: seeds the random draws of the space.
        include_dashboard: start the dashboard with a local Ray instance.
        verbose: Tune's progress output on stdout (0 = none).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    samples: int = Field(4, ge=1)
    metric: str = "val_mae"
    mode: Literal["min", "max"] = "min"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1.0)
    max_concurrent: int | None = Field(None, ge=1)
    seed: int = 0
    include_dashboard: bool | None = None
    verbose: int = Field(1, ge=0, le=3)


class TrialRecord(BaseModel):
    """One trial of a sweep.

    Attributes:
        trial: its index ``k`` (run ``<sweep>-t<k>``); trial_id: Tune's id.
        config: the sampled ``{space key: value}``.
        run, run_uri: the training run and its folder (checkpoints, ``losses.csv``).
        status: ``TERMINATED`` (finished or stopped by ASHA) or ``ERROR``.
        epochs: the last epoch it reported to Tune; max_epochs: its budget.
        trained_epochs: epochs in its run's ``losses.csv``: a stopped trial is killed asynchronously,
            so its run may have trained (and checkpointed) a little past ``epochs``; the last of those
            epochs may have its losses row without its checkpoint (the row is written first).
        stopped_early: ASHA stopped it before ``max_epochs`` (its last report is of an earlier epoch).
        last, best: the metric's last and best reported values (None when never reported).
        error: the failure of an ``ERROR`` trial.
    """

    trial: int
    trial_id: str
    config: dict[str, Any]
    run: str
    run_uri: str
    status: str
    epochs: int
    max_epochs: int
    trained_epochs: int
    stopped_early: bool
    last: float | None = None
    best: float | None = None
    error: str | None = None


class SweepResult(BaseModel):
    """What :func:`sweep_training` returns and records at ``sweeps/<model>/<sweep>.json``.

    Attributes:
        name, model, store: the sweep.
        uri: the record's location.
        metric, mode, max_t, grace_period, reduction_factor: the ASHA settings.
        space: the space as given (``{key: {kind: values}}``); space_file: its path.
        base: the base ``TrainRun`` (JSON data) every trial starts from.
        trials: every trial, in trial order.
        best_trial, best_config, best_run: the trial with the best reported metric (None if none reported).
        dashboard: the Ray dashboard's address while the sweep ran (None without one).
        wall_s: seconds the sweep took.
    """

    name: str
    model: str
    store: str
    uri: str
    metric: str
    mode: str
    max_t: int
    grace_period: int
    reduction_factor: float
    space: dict[str, Any]
    space_file: str
    base: dict[str, Any]
    trials: list[TrialRecord]
    best_trial: int | None = None
    best_config: dict[str, Any] | None = None
    best_run: str | None = None
    dashboard: str | None = None
    wall_s: float = 0.0


def trial_run(base: TrainRun, space: SweepSpace, values: dict[str, Any], sweep: str, trial: int) -> TrainRun:
    """The ``TrainRun`` of trial ``trial``: the base with the sampled values, run ``<sweep>-t<trial>``, validating
    every epoch.

    Raises:
        pydantic.ValidationError: a sampled value is invalid for the config.
    """
    data = base.model_dump(mode="json")
    over = space.overrides(values)
    data["model_options"] = {**data["model_options"], **over["model"]}
    data["dataset_spec"] = {**data["dataset_spec"], **over["dataset"]}
    data.update(over["run"])
    data["run"] = f"{sweep}-t{trial}"
    data["validate_every"] = 1
    return TrainRun.model_validate(data)


def _trial_index(trial_id: str) -> int:
    """Tune's trial ids end with ``_<index>`` (zero-padded, in creation order)."""
    return int(trial_id.rsplit("_", 1)[-1])


def _train_trial(config: dict[str, Any]) -> None:
    """The Tune function trainable: one Ray Train run of the engine, its reports passed on to Tune."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from breastflow.train.launch import make_trainer

    space = SweepSpace.model_validate(config["space"])
    base = TrainRun.model_validate(config["base"])
    trial = _trial_index(tune.get_context().get_trial_id())
    run = trial_run(base, space, config["params"], config["sweep"], trial)
    loc = StoreLocation.from_url(run.store)
    atomic_write_bytes(loc, f"{run.run_dir}/{RUN_FILE}", json.dumps(run.model_dump(mode="json"), indent=2).encode())
    make_trainer(run, callbacks=[TuneReportCallback()]).fit()


def check_space(base: TrainRun, space: SweepSpace) -> None:
    """Every listed value (and both bounds of a range) must give a valid ``TrainRun``.

    Raises:
        SweepSpaceError: naming the key, the value and the space file.
    """
    for param in space.params:
        for value in param.candidates():
            try:
                trial_run(base, space, {param.key: value}, "check", 0)
            except ValueError as err:
                first = str(err).strip().splitlines()
                reason = " ".join(first[1:3]).strip() if len(first) > 1 else str(err)
                raise SweepSpaceError(f"space file {space.source}: key {param.key!r}: value {value!r} is invalid "
                                      f"for {base.model} ({reason})") from err


def orphaned_placement_groups() -> list[bytes]:
    """Ids of live placement groups whose creating actor is dead (and which are not detached).

    A trial that ASHA stops is killed mid-run; its Ray Train controller dies with it, and the
    placement group that held the run's worker CPUs stays reserved until the job ends (GCS frees a
    non-detached group only when its creator actor *and* job are gone). Ray Train's own
    ``PlacementGroupCleaner`` finds the dead controller through the dashboard's state API, which
    fails without a dashboard or when another cluster's address file wins; this reads the GCS table.
    """
    import ray
    from ray._private.state import state
    from ray.core.generated import gcs_pb2

    accessor = state._connect_and_get_accessor()
    removed = gcs_pb2.PlacementGroupTableData.REMOVED
    out = []
    for raw in accessor.get_placement_group_table():
        data = gcs_pb2.PlacementGroupTableData.FromString(raw)
        by_actor = bool(data.creator_actor_id) and not ray.ActorID(data.creator_actor_id).is_nil()  # not a driver's
        if by_actor and data.creator_actor_dead and not data.is_detached and data.state != removed:
            out.append(data.placement_group_id)
    return out


def free_orphaned_placement_groups() -> int:
    """Remove :func:`orphaned_placement_groups`; returns how many (errors are logged, never raised)."""
    import ray
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    freed = 0
    try:
        for pg_id in orphaned_placement_groups():
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(pg_id)))
            freed += 1
    except Exception as err:  # noqa: BLE001 - a failed clean-up must not fail the sweep
        log.warning("could not free the placement groups of stopped trials: %s", err)
    if freed:
        log.info("freed %d placement group(s) of stopped trials", freed)
    return freed


def _cleanup_callback(interval_s: float = 2.0) -> Any:
    """A Tune callback that frees stopped trials' worker resources (:func:`free_orphaned_placement_groups`)."""
    from ray.tune import Callback

    class FreeStoppedTrials(Callback):
        def __init__(self) -> None:
            self.next_check = 0.0

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            now = time.monotonic()
            if now >= self.next_check:
                self.next_check = now + interval_s
                free_orphaned_placement_groups()

    return FreeStoppedTrials()


def _max_concurrent(config: SweepConfig, base: TrainRun) -> int:
    import ray

    if config.max_concurrent is not None:
        return config.max_concurrent
    if base.gpu:
        per, have = base.workers, ray.cluster_resources().get("GPU", 0)
    else:
        per, have = base.workers, ray.cluster_resources().get("CPU", 1)
    return max(1, int(have // (max(per, 1) + (0 if base.gpu else TRIAL_CPU))))  # each trial also holds TRIAL_CPU


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if hasattr(value, "item") and not isinstance(value, list | dict):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(grid: Any, config: SweepConfig, base: TrainRun) -> list[TrialRecord]:
    loc = StoreLocation.from_url(base.store)
    rows = []
    tune_trials = list(getattr(getattr(grid, "_experiment_analysis", None), "trials", None) or [])
    for k, result in enumerate(grid):
        trial_id = str((result.metrics or {}).get("trial_id") or
                       (tune_trials[k].trial_id if k < len(tune_trials) else f"unknown_{k}"))
        frame = result.metrics_dataframe
        values = []
        epochs = 0
        if frame is not None and not frame.empty:
            if config.metric in frame:
                values = [float(v) for v in frame[config.metric].dropna().tolist()]
            if TIME_ATTR in frame:
                epochs = int(frame[TIME_ATTR].dropna().max())
        values = [v for v in values if math.isfinite(v)]
        best = (min(values) if config.mode == "min" else max(values)) if values else None
        trial = _trial_index(trial_id)
        run = trial_run(base, SweepSpace.model_validate(result.config["space"]), result.config["params"],
                        config.name, trial)
        error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"[:2000]
        total = run.total_epochs
        losses = read_losses(loc.join(run.run_dir, LOSSES_FILE), loc)
        trained = max((int(r["epoch"]) for r in losses), default=0)
        rows.append(TrialRecord(
            trial=trial, trial_id=trial_id, config={k: _clean(v) for k, v in result.config["params"].items()},
            run=run.run, run_uri=loc.join(run.run_dir), status="ERROR" if error else "TERMINATED", epochs=epochs,
            max_epochs=total, trained_epochs=trained, stopped_early=error is None and epochs < total, last=values[-1] if values else None,
            best=best, error=error))
    return sorted(rows, key=lambda r: r.trial)


def _best(trials: Sequence[TrialRecord], mode: str) -> TrialRecord | None:
    scored = [t for t in trials if t.best is not None]
    if not scored:
        return None
    key = (lambda t: (t.best, t.trial)) if mode == "min" else (lambda t: (-t.best, t.trial))
    return min(scored, key=key)


def sweep_training(base: TrainRun, space: SweepSpace, config: SweepConfig,
                   on_start: Callable[[str | None], None] | None = None) -> SweepResult:
    """Run the sweep and record it (see the module docstring).

    Ray: the instance already initialised in this process, else ``RAY_ADDRESS``, else a new local
    one (:func:`breastflow.train.ray_cluster.init_ray`; shut down at the end when started here).

    Args:
        base: the base run (model, store, dataset, epochs, workers ...); its ``run`` name is ignored.
        space: the search space.
        config: the sweep settings.
        on_start: called with the dashboard address (or None) once Ray is connected.

    Returns:
        The recorded :class:`SweepResult`.

    Raises:
        SweepError: the sweep's record or one of its runs already exists.
        SweepSpaceError: a value of the space is invalid for the model.
        breastflow.train.validation.ValidationError: the store has no ``val`` split.
        and what :func:`breastflow.train.launch.preflight` raises for the base config.
    """
    from breastflow.train.launch import preflight
    from breastflow.train.ray_cluster import apply_ray_env, init_ray

    layout.check_name(config.name, "sweep name")
    loc = StoreLocation.from_url(base.store)
    record = layout.sweep_file(base.model, config.name)
    if exists(loc, record):
        raise SweepError(f"sweep {config.name!r} of {base.model} already exists ({loc.join(record)}); "
                         "choose another --name")
    fs = loc.filesystem()
    taken = fs.glob(loc.fs_path(layout.CHECKPOINTS, base.model) + f"/{config.name}-t*")
    if taken:
        raise SweepError(f"runs of a sweep named {config.name!r} already exist ({taken[0]}); choose another --name")
    check_space(base, space)
    preflight(base.model_copy(update={"validate_every": 1, "run": f"{config.name}-t0"}))
    max_t = base.total_epochs
    if max_t < config.grace_period:
        raise SweepError(f"the base config trains {max_t} epochs, fewer than grace_period={config.grace_period}")

    apply_ray_env()
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    started = init_ray(include_dashboard=config.include_dashboard)
    t0 = time.perf_counter()
    try:
        from breastflow.train.follow import dashboard_url

        dashboard = dashboard_url()
        if on_start is not None:
            on_start(dashboard)
        tuner = tune.Tuner(
            tune.with_resources(_train_trial, {"cpu": TRIAL_CPU}),  # the trial only drives its Train workers
            param_space={"params": space.to_tune(), "space": space.model_dump(mode="json"),
                         "base": base.model_dump(mode="json"), "sweep": config.name},
            tune_config=tune.TuneConfig(
                metric=config.metric, mode=config.mode, num_samples=config.samples,
                scheduler=ASHAScheduler(time_attr=TIME_ATTR, max_t=max_t, grace_period=config.grace_period,
                                        reduction_factor=config.reduction_factor),
                search_alg=BasicVariantGenerator(max_concurrent=_max_concurrent(config, base),
                                                 random_state=config.seed),
            ),
            run_config=tune.RunConfig(name=config.name, storage_path=loc.join(layout.SWEEPS, base.model),
                                      verbose=config.verbose, callbacks=[_cleanup_callback()]),
        )
        grid = tuner.fit()
        trials = _records(grid, config, base)
    finally:
        if started:
            ray.shutdown()
    best = _best(trials, config.mode)
    result = SweepResult(
        name=config.name, model=base.model, store=base.store, uri=loc.join(record), metric=config.metric,
        mode=config.mode, max_t=max_t, grace_period=config.grace_period, reduction_factor=config.reduction_factor,
        space=space.describe(), space_file=space.source, base=base.model_dump(mode="json"), trials=trials,
        best_trial=best.trial if best else None, best_config=best.config if best else None,
        best_run=best.run if best else None, dashboard=dashboard, wall_s=round(time.perf_counter() - t0, 1))
    atomic_write_bytes(loc, record, json.dumps(result.model_dump(mode="json"), indent=2).encode())
    return result


def read_sweep(store: str, model: str, name: str) -> SweepResult:
    """The recorded sweep ``name`` of ``model``.

    Raises:
        FileNotFoundError: no such sweep in the store.
    """
    loc = StoreLocation.from_url(store)
    record = layout.sweep_file(model, name)
    if not exists(loc, record):
        raise FileNotFoundError(f"no sweep {name!r} of {model} in {loc.url} (expected {loc.join(record)})")
    return SweepResult.model_validate_json(read_bytes(loc, record))


def sweep_from_files(model: str, store: str, space_file: Path, config_file: Path | None = None,
                     overrides: Sequence[str] = (), **run_fields: Any) -> tuple[TrainRun, SweepSpace]:
    """The base run (like ``breastflow train``: config file, ``--set`` items) and the space read from its file.

    Raises:
        SweepSpaceError, breastflow.train.settings.SettingsError, pydantic.ValidationError.
    """
    base = build_train_run(model, store, config_file, overrides, **run_fields)
    space = read_space(space_file, base.model, base.dataset)
    return base, space


__all__ = ["SweepConfig", "SweepError", "SweepResult", "SweepSpace", "SweepSpaceError", "TrialRecord",
           "build_space", "read_space", "read_sweep", "sweep_from_files", "sweep_training", "trial_run"]
