"""``breastflow generate``: write the synthetic series of a checkpoint's generator into the store.

Thin: options -> :class:`breastflow.generate.config.GenerateConfig` ->
:func:`breastflow.generate.run.generate_synthetic` -> print. Bad input (no
checkpoint there, a checkpoint of another model, a store without the phase,
an empty split) exits non-zero with a message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("generate")
@click.argument("checkpoint")
@click.argument("store")
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="test", show_default=True,
              help="Studies to generate (patient-level split of the catalog).")
@click.option("--out", "name", default=None,
              help="Synthetic set name, written to STORE/synthetic/NAME/ (default <model>-<run>-e<epoch>).")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Slices per generator call.")
@click.option("--model", "model", default=None, help="Refuse a checkpoint of any other model family (e.g. pix2pixhd).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda:0.")
@click.option("--nifti", "nifti_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also export every synthetic volume as NIfTI (real affine) into DIR/NAME/.")
@click.option("--json", "as_json", is_flag=True, help='Print {"name", "series", "studies"} as JSON.')
def generate(checkpoint: str, store: str, split: str, name: str | None, batch: int, model: str | None, device: str,
             nifti_dir: Path | None, as_json: bool) -> None:
    """Run the generator of CHECKPOINT (folder or state.pt, local or s3://) over whole volumes of STORE.

    Each synthetic series lands in STORE/synthetic/NAME/ with the real series' geometry,
    dtype and rescale, committed like real series; evaluate reads it with
    store:///STORE?synthetic=NAME&series=post_1.
    """
    from pydantic import ValidationError

    from breastflow.data.datasets.base import DatasetError
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import GenerateError, generate_synthetic
    from breastflow.models import ModelStateError
    from breastflow.train.checkpoint import CheckpointError

    try:
        config = GenerateConfig(checkpoint=checkpoint, store=store, split=GenerateSplit(split), name=name, batch=batch,
                                model=model, device=device, nifti_dir=nifti_dir)
    except ValidationError as err:
        raise click.ClickException(str(err)) from err
    try:
        result = generate_synthetic(config)
    except (CheckpointError, ModelStateError, DatasetError, GenerateError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps({"name": result.name, "series": result.series, "studies": len(result.studies),
                               "slices": result.slices, "uri": result.uri, "checkpoint": result.checkpoint,
                               "model": result.model, "epoch": result.epoch,
                               "dataset_version": result.dataset_version, "nifti": result.nifti}, indent=2))
        return
    click.echo(f"synthetic set {result.name}: {', '.join(result.series)} for {len(result.studies)} studies "
               f"({result.slices} slices) in {result.uri}")
    click.echo(f"generator: {result.model} epoch {result.epoch} ({result.checkpoint}), "
               f"dataset version {result.dataset_version}")
    for path in result.nifti:
        click.echo(f"  {path}")
