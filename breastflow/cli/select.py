"""``breastflow select`` (and ``breastflow report``, the synthesis report of the selected checkpoint).

``select`` is thin: options -> :class:`breastflow.select.run.SelectConfig` ->
:func:`breastflow.select.run.select_checkpoints` -> print. Bad input (a run without
checkpoints, an unknown metric or criterion, fid_rad without RadImageNet weights, a bad
weight option, every checkpoint failing) exits non-zero with a message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def _metric_list(text: str | None) -> tuple[str, ...]:
    return tuple(m.strip().lower() for m in (text or "").split(",") if m.strip())


def _weights(items: tuple[str, ...]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise click.BadParameter(f"{item!r}: expected NAME=PATH (e.g. radimagenet=/weights/RadImageNet.h5)",
                                     param_hint="--weights")
        if not Path(path).is_file():
            raise click.BadParameter(f"{item!r}: no file at {path}", param_hint="--weights")
        out[name.strip().lower()] = Path(path)
    return out


@click.command("select")
@click.argument("run")
@click.argument("store")
@click.option("--model", default="pix2pixhd", show_default=True, help="Family of the run (checkpoints/MODEL/RUN/).")
@click.option("--metrics", default=None, metavar="A,B",
              help="Metrics the criterion ranks by (default: the criterion's; SAMe: fid_img,fid_rad,ssim,mse,mae, "
                   "fid_rad only with RadImageNet weights).")
@click.option("--extra", "extra", default=None, metavar="A,B",
              help="Extra columns (default: psnr, ms_ssim, frd, lpips where possible); '' for none.")
@click.option("--criterion", default=None, help="same, swd, fid_img, nn_accuracy_gap (default: the model family's).")
@click.option("--split", default="val", show_default=True, help="Split of the real slices compared.")
@click.option("--series", default="post_1", show_default=True, help="Series generated and compared.")
@click.option("--data-range", type=float, default=None,
              help="Intensity range R (default: the real set's observed range, recorded in the output).")
@click.option("--weights", "weights", multiple=True, metavar="NAME=PATH",
              help="Weight file of an extractor (radimagenet=..., lpips=...). Repeatable.")
@click.option("--device", default=None, help="Torch device of each trial (default: CUDA when Ray gives it a GPU).")
@click.option("--force", is_flag=True, help="Evaluate every checkpoint again, even when a stored evaluation exists.")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=None,
              help="Trials at once (default: what the Ray cluster's CPUs/GPUs allow).")
@click.option("--json", "as_json", is_flag=True, help="Print {selected, table, failed, notes, ...} as JSON.")
def select(run: str, store: str, model: str, metrics: str | None, extra: str | None, criterion: str | None, split: str,
           series: str, data_range: float | None, weights: tuple[str, ...], device: str | None, force: bool,
           max_concurrent: int | None, as_json: bool) -> None:
    """Evaluate every checkpoint of RUN in STORE (one Ray Tune trial each) and pick the best.

    The choice and its table go to STORE/checkpoints/MODEL/RUN/selected.json. Ray: local
    unless RAY_ADDRESS names a cluster; the dashboard URL is printed when there is one.
    """
    from pydantic import ValidationError

    from breastflow.data.image_sets import InputError
    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.registry import RegistryError
    from breastflow.select.run import SelectConfig, SelectError, select_checkpoints
    from breastflow.train.ray_cluster import RayClusterError

    try:
        evaluation = EvaluationConfig(allow_clipping=True, data_range=data_range, weights=_weights(weights),
                                      device=device)
        config = SelectConfig(store=store, model=model, run=run, metrics=_metric_list(metrics),
                              extra_metrics=None if extra is None else _metric_list(extra), criterion=criterion,
                              split=split, series=series, evaluation=evaluation, force=force,
                              max_concurrent=max_concurrent)
    except ValidationError as err:
        raise click.ClickException(str(err)) from err

    def announce() -> None:
        from breastflow.train.follow import dashboard_url

        url = dashboard_url()
        if url:
            click.echo(f"Ray dashboard: {url} (one trial per checkpoint)", err=True)

    try:
        result = select_checkpoints(config, on_start=announce)
    except (SelectError, RegistryError, InputError, RayClusterError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps({"selected": result.selected, "criterion": result.criterion, "metrics": result.metrics,
                               "table": result.table, "failed": result.failed, "notes": result.notes,
                               "dataset_version": result.dataset_version, "uri": result.uri}, indent=2))
        return
    columns = [*result.metrics, *result.extra_metrics]
    click.echo(f"run {result.run}: {len(result.table)} checkpoints evaluated on {result.selection}")
    click.echo("  ".join(["epoch".rjust(6), *[c.rjust(10) for c in columns], result.criterion.rjust(8)]))
    for row in result.table:
        mark = " *" if row["checkpoint"] == result.selected else ""
        cells = [f"{row[c]:10.4g}" if c in row else "-".rjust(10) for c in columns]
        click.echo("  ".join([str(row["epoch"]).rjust(6), *cells, f"{row['score']:8.4f}"]) + mark)
    for failure in result.failed:
        click.echo(f"failed: {failure['checkpoint']}: {failure['error']}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"selected {result.selected}")
    click.echo(f"recorded in {result.uri}")


# ``breastflow report`` (the synthesis report of the selected checkpoint) lives in breastflow/cli/report.py;
# breastflow/cli/__init__.py's command table names it as breastflow.cli.select:report, hence this re-export.
from breastflow.cli.report import report

__all__ = ["report", "select"]
