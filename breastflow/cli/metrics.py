"""``breastflow same`` and ``breastflow evaluate``: checkpoint selection and set evaluation.

Both are thin: parse options, call :mod:`breastflow.select.same` or
:mod:`breastflow.metrics.evaluate`, print. Bad input is reported as a click
error (exit code 2 for usage, 1 for bad data) naming the file or column.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("empty list")
    return items


def _parse_weights(value: str | None) -> list[float] | dict[str, float] | None:
    """``"1,2,1"`` (aligned with --metrics) or ``"fid_img=2,ssim=1"``."""
    items = _split_list(value)
    if items is None:
        return None
    try:
        if all("=" in i for i in items):
            return {k.strip(): float(v) for k, v in (i.split("=", 1) for i in items)}
        return [float(i) for i in items]
    except ValueError as err:
        raise click.BadParameter(f"weights must be numbers or name=number pairs, got {value!r}") from err


@click.command("same")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metrics", "metrics", default=None,
              help="Comma-separated metric columns to aggregate (default: fid_img,fid_rad,ssim,mse,mae).")
@click.option("--weights", "weights", default=None,
              help="Comma-separated weights aligned with --metrics, or name=weight pairs (default: equal).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
def same(table: Path, metrics: str | None, weights: str | None, as_json: bool) -> None:
    """Rank candidates in TABLE.csv by SAMe and print the choice.

    TABLE.csv: first column = candidate name, other columns = raw metric values
    named as breastflow spells them (fid_img, fid_rad, ssim, mse, mae, ...).
    """
    import pandas as pd

    from breastflow.select.same import read_candidate_table, same_score

    try:
        result = same_score(read_candidate_table(table), metrics=_split_list(metrics), weights=_parse_weights(weights))
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4g}".format):
        click.echo("Raw values:")
        click.echo(result.raw.to_string())
        click.echo("\nScaled (0 = best candidate, 1 = worst):")
        click.echo(result.scaled.assign(same=result.same).to_string())
    if result.constant_metrics:
        click.echo(f"\nConstant over all candidates, scaled to 0: {', '.join(result.constant_metrics)}")
    click.echo(f"\nChoice: {result.choice} (SAMe {result.same[result.choice]:.4g})")


@click.command("evaluate")
@click.argument("real", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("fake", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metrics", "metrics", default=None,
              help="Comma-separated names among mse, mae, psnr, ssim, ms_ssim, lpips, fid_img, fid_rad, frd, "
                   "nn_accuracy, precision_recall, density_coverage, moments, swd "
                   "(default: moments,swd,nn_accuracy; plus mse,mae,psnr,ssim with --paired).")
@click.option("--paired", is_flag=True, help="Pair images by file name (needed by mse, mae, psnr, ssim, ms_ssim).")
@click.option("--data-range", "data_range", type=float, default=None,
              help="Intensity range R (default: 255 for 8-bit, 65535 for 16-bit images).")
@click.option("--feature-space", default="pixels", show_default=True,
              help="'pixels' or a feature extractor for nn_accuracy / precision_recall / density_coverage.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the values as JSON to this file.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write JSON, plots and a Markdown/HTML report into this folder.")
@click.option("--device", default=None, help="torch device, e.g. cuda:0 (default: CPU).")
def evaluate(real: Path, fake: Path, metrics: str | None, paired: bool, data_range: float | None, feature_space: str,
             json_out: Path | None, report_dir: Path | None, device: str | None) -> None:
    """Evaluate the synthetic images in FAKE against the real images in REAL (folders of PNG / .npy)."""
    from breastflow.metrics.evaluate import EvaluationConfig, evaluate_folders
    from breastflow.metrics.report import write_json, write_report
    from breastflow.registry import RegistryError

    names = _split_list(metrics)
    try:
        config = EvaluationConfig(metrics=tuple(names) if names else None, paired=paired, data_range=data_range,
                                  feature_space=feature_space, device=device)
        result = evaluate_folders(real, fake, config)
    except (ValueError, RegistryError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    width = max(len(k) for k in result.values)
    for key, value in result.values.items():
        click.echo(f"{key:<{width}}  {value:.6g}")
    if json_out is not None:
        write_json(result, json_out)
        click.echo(f"wrote {json_out}")
    if report_dir is not None:
        files = write_report(result, report_dir)
        click.echo(f"wrote report {files.markdown}")
