"""``breastflow train``: train a GAN family on a store with Ray Train.

Thin: options -> :func:`breastflow.train.settings.build_train_run` ->
:func:`breastflow.train.launch.launch_training` -> print. Bad input (unknown
model, bad ``--set``, missing weight file or phase, unreachable ``RAY_ADDRESS``,
a run that exists with other settings) exits non-zero with a message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("train")
@click.argument("model")
@click.argument("store")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON/YAML file with sections model, dataset, run (see docs/train.md).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting: epochs, decay_epochs, checkpoint_every, image_size, batch_size, "
                   "perceptual=on|off, ... or model.<field>, dataset.<field>, run.<field>. Repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Ray Train workers (default 1).")
@click.option("--gpu", is_flag=True, default=None, help="One GPU per worker (bf16, channels-last).")
@click.option("--run", "run_name", default=None,
              help="Run name (default 'default'); the same name again continues that run.")
@click.option("--json", "as_json", is_flag=True, help="Print {run, checkpoints, epochs, dataset_version} as JSON.")
def train(model: str, store: str, config_file: Path | None, overrides: tuple[str, ...], workers: int | None,
          gpu: bool | None, run_name: str | None, as_json: bool) -> None:
    """Train MODEL (e.g. pix2pixhd) on the store STORE (path or s3://bucket/prefix).

    Checkpoints go to STORE/checkpoints/MODEL/RUN/epoch_<N>/. Ray: local unless
    RAY_ADDRESS names a cluster.
    """
    from pydantic import ValidationError

    from breastflow.data.datasets import DatasetError
    from breastflow.models import MODELS
    from breastflow.registry import RegistryError
    from breastflow.train.checkpoint import CheckpointError
    from breastflow.train.launch import launch_training
    from breastflow.train.ray_cluster import RayClusterError
    from breastflow.train.settings import SettingsError, build_train_run

    try:
        MODELS.get(model)
        run = build_train_run(model, store, config_file, overrides, workers=workers, gpu=gpu or None,
                              run=run_name)
    except (RegistryError, SettingsError, ValidationError) as err:
        raise click.ClickException(str(err)) from err
    try:
        result = launch_training(run)
    except (DatasetError, CheckpointError, RayClusterError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps({"run": result.run, "run_uri": result.run_uri, "checkpoints": result.checkpoints,
                               "epochs": result.epochs, "dataset_version": result.dataset_version,
                               "metrics": result.metrics}, indent=2))
        return
    click.echo(f"run {result.run}: {result.epochs} epochs, {len(result.checkpoints)} checkpoints in {result.run_uri}")
    click.echo(f"dataset version {result.dataset_version}")
    for name, value in sorted(result.metrics.items()):
        if isinstance(value, float):
            click.echo(f"  {name:<20} {value:.4g}")
