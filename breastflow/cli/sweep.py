"""``breastflow sweep``: tune a model's training config on Ray Tune, each trial a Ray Train run, ASHA early stopping.

Thin: options -> :func:`breastflow.select.sweep.sweep_from_files` (base run + space) ->
:func:`breastflow.select.sweep.sweep_training` -> print. Bad input (unknown model,
unknown or reserved space key, bad distribution, empty space, a store without a
``val`` split, an existing sweep name) exits non-zero with a message naming it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import click


def _default_name() -> str:
    return time.strftime("sweep-%Y%m%d-%H%M%S", time.gmtime())


@click.command("sweep")
@click.argument("model")
@click.argument("store")
@click.option("--space", "space_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML/JSON: setting -> distribution ({choice: [...]}, {grid: [...]}, {uniform: [a, b]}, "
                   "{loguniform: [a, b]}, {randint: [a, b]}); see docs/sweep.md.")
@click.option("--samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="Trials drawn from the space (with grid entries: repeats of the grid).")
@click.option("--name", default=None, help="Sweep name (default sweep-<UTC time>); trial runs are <name>-t<k>.")
@click.option("--metric", default="val_mae", show_default=True, help="Reported metric ASHA and the choice go by.")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--grace-period", type=click.IntRange(min=1), default=1, show_default=True,
              help="Epochs every trial trains before ASHA may stop it.")
@click.option("--reduction-factor", type=click.FloatRange(min=1.0, min_open=True), default=2.0, show_default=True,
              help="ASHA keeps the best 1/reduction-factor of the trials at each rung.")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=None,
              help="Trials at once (default: cluster CPUs, or GPUs with --gpu, per trial's workers).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the space's random draws.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Base training config (sections model, dataset, run), as for `breastflow train`.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a base setting, as for `breastflow train` (e.g. epochs=4). Repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Ray Train workers per trial (default 1).")
@click.option("--gpu", is_flag=True, default=None, help="One GPU per worker.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep record as JSON.")
def sweep(model: str, store: str, space_file: Path, samples: int, name: str | None, metric: str, mode: str,
          grace_period: int, reduction_factor: float, max_concurrent: int | None, seed: int,
          config_file: Path | None, overrides: tuple[str, ...], workers: int | None, gpu: bool | None,
          as_json: bool) -> None:
    """Sweep MODEL's training config on the store STORE (path or s3://bucket/prefix).

    Each trial trains run <name>-t<k> (checkpoints in STORE/checkpoints/MODEL/<name>-t<k>/),
    reports val_mae on the store's val split every epoch, and ASHA stops the weak ones.
    The record goes to STORE/sweeps/MODEL/<name>.json.
    """
    from pydantic import ValidationError

    from breastflow.data.datasets import DatasetError
    from breastflow.models import MODELS
    from breastflow.registry import RegistryError
    from breastflow.select.sweep import (
        SweepConfig,
        SweepError,
        sweep_from_files,
        sweep_training,
    )
    from breastflow.select.sweep_space import SweepSpaceError
    from breastflow.train.checkpoint import CheckpointError
    from breastflow.train.ray_cluster import RayClusterError
    from breastflow.train.settings import SettingsError

    try:
        MODELS.get(model)
        config = SweepConfig(name=name or _default_name(), samples=samples, metric=metric, mode=mode,
                             grace_period=grace_period, reduction_factor=reduction_factor,
                             max_concurrent=max_concurrent, seed=seed, verbose=0 if as_json else 1)
        base, space = sweep_from_files(model, store, space_file, config_file, overrides, workers=workers,
                                       gpu=gpu or None)
    except (RegistryError, SettingsError, SweepSpaceError, ValidationError) as err:
        raise click.ClickException(str(err)) from err

    def started(dashboard: str | None) -> None:
        where = dashboard or "not running (no dashboard with this Ray instance)"
        click.echo(f"sweep {config.name}: Ray connected, dashboard {where}", err=True)

    try:
        # Tune prints its progress on stdout; with --json stdout holds the record only
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = sweep_training(base, space, config, on_start=started)
    except (SweepError, SweepSpaceError, DatasetError, CheckpointError, RayClusterError, FileNotFoundError,
            ValueError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    click.echo(f"sweep {result.name}: {len(result.trials)} trials, {result.metric} ({result.mode}), "
               f"ASHA max_t={result.max_t} grace={result.grace_period} rf={result.reduction_factor:g}, "
               f"{result.wall_s:.0f} s")
    for t in result.trials:
        best = "-" if t.best is None else f"{t.best:.4g}"
        state = "error" if t.error else ("stopped early" if t.stopped_early else "complete")
        click.echo(f"  t{t.trial:<3} {t.run:<28} epochs {t.epochs}/{t.max_epochs:<3} best {best:<10} {state:<14} "
                   f"{json.dumps(t.config)}")
    if result.best_run:
        click.echo(f"best: {result.best_run} {json.dumps(result.best_config)}")
    click.echo(f"record: {result.uri}")
