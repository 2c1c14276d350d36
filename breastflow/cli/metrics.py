"""``breastflow same`` and ``breastflow evaluate``: checkpoint selection and set evaluation.

Both are thin: parse options, call :mod:`breastflow.select.same` or
:mod:`breastflow.evaluate.sets`, print. Bad input is reported as a click
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
@click.option("--constant-rtol", type=click.FloatRange(min=0), default=None,
              help="Relative tolerance under which a metric counts as constant over the candidates (default 1e-9).")
@click.option("--constant-atol", type=click.FloatRange(min=0), default=None,
              help="Absolute tolerance added to it (default 1e-12).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of tables.")
def same(table: Path, metrics: str | None, weights: str | None, constant_rtol: float | None,
         constant_atol: float | None, as_json: bool) -> None:
    """Rank candidates in TABLE.csv by SAMe and print the choice.

    TABLE.csv: first column = candidate name, other columns = raw metric values
    named as breastflow spells them (fid_img, fid_rad, ssim, mse, mae, ...).
    """
    import pandas as pd

    from breastflow.select.same import (
        CONSTANT_ATOL,
        CONSTANT_RTOL,
        read_candidate_table,
        same_score,
    )

    try:
        result = same_score(read_candidate_table(table), metrics=_split_list(metrics), weights=_parse_weights(weights),
                            constant_rtol=CONSTANT_RTOL if constant_rtol is None else constant_rtol,
                            constant_atol=CONSTANT_ATOL if constant_atol is None else constant_atol)
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
    tolerance = f"rtol {result.constant_rtol:g}, atol {result.constant_atol:g}"
    if result.constant_metrics:
        click.echo(f"\nConstant over all candidates ({tolerance}), scaled to 0: {', '.join(result.constant_metrics)}")
    else:
        click.echo(f"\nNo metric constant over all candidates ({tolerance})")
    click.echo(f"\nChoice: {result.choice} (SAMe {result.same[result.choice]:.4g})")


@click.command("evaluate")
@click.argument("real")
@click.argument("fake")
@click.option("--metrics", "metrics", default=None,
              help="Comma-separated names among mse, mae, psnr, ssim, ms_ssim, lpips, fid_img, fid_rad, frd, "
                   "nn_accuracy, precision_recall, density_coverage, moments, swd "
                   "(default: moments,swd,nn_accuracy; plus mse,mae,psnr,ssim with --paired).")
@click.option("--paired", is_flag=True,
              help="Pair images by file name, or by (study, slice) with store selections (needed by mse, mae, psnr, "
                   "ssim, ms_ssim, lpips).")
@click.option("--data-range", "data_range", type=float, default=None,
              help="Intensity range R (default: the real set's observed range, max - min(min, 0); never the "
                   "file type's range). The range used and its source are printed and written to the JSON.")
@click.option("--max-clipped-share", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Refuse when a metric that windows intensities to [0, R] (feature extractors, LPIPS) would clip "
                   "more than this share of a set's pixels.")
@click.option("--allow-clipping", is_flag=True,
              help="Score even when more pixels than --max-clipped-share lie outside [0, R] (still warned about).")
@click.option("--feature-space", default="pixels", show_default=True,
              help="'pixels' or a feature extractor for nn_accuracy / precision_recall / density_coverage.")
@click.option("--resize", type=click.IntRange(min=1), default=None,
              help="Resize every image to NxN (bilinear, antialiased) for distribution metrics and the memorisation "
                   "check; needed when images differ in size. Paired metrics stay at native size.")
@click.option("--by", "by", default=None,
              help="Fairness groupings among vendor,field_strength,lesion_class (default: every one the real set "
                   "has labels for; 'none' = no breakdown).")
@click.option("--min-group-size", type=click.IntRange(min=2), default=10, show_default=True,
              help="Smallest real and synthetic group a distribution metric is computed on.")
@click.option("--train", "train", default=None,
              help="Training images (folder or store selection): with --holdout, runs the memorisation check.")
@click.option("--holdout", "holdout", default=None, help="Held-out real images (folder or store selection).")
@click.option("--privacy-features", default="inception", show_default=True,
              help="Feature extractor of the memorisation check's feature space ('pixels' = pixel space only).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the values as JSON to this file.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write JSON, plots and a Markdown/HTML report into this folder.")
@click.option("--device", default=None, help="torch device, e.g. cuda:0 (default: CPU).")
@click.option("--threads", "num_threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads of the paired metrics (default: torch's own; set it on a busy machine).")
def evaluate(real: str, fake: str, metrics: str | None, paired: bool, data_range: float | None,
             max_clipped_share: float, allow_clipping: bool, feature_space: str,
             resize: int | None, by: str | None, min_group_size: int, train: str | None, holdout: str | None,
             privacy_features: str, json_out: Path | None, report_dir: Path | None, device: str | None,
             num_threads: int | None) -> None:
    """Evaluate the synthetic images FAKE against the real images REAL.

    REAL and FAKE are folders of PNG / .npy images or store selections such as
    store:///data/store?series=post_1&split=test&slices=lesion (see docs/metrics_selection.md).
    """
    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.evaluate.report import write_json, write_report
    from breastflow.evaluate.sets import evaluate_inputs
    from breastflow.registry import RegistryError

    names = _split_list(metrics)
    groupings = None if by is None else (() if by.strip().lower() == "none" else tuple(_split_list(by) or ()))
    try:
        config = EvaluationConfig(metrics=tuple(names) if names else None, paired=paired, data_range=data_range,
                                  max_clipped_share=max_clipped_share, allow_clipping=allow_clipping,
                                  feature_space=feature_space, device=device, resize=resize, by=groupings,
                                  min_group_size=min_group_size, privacy_features=privacy_features,
                                  num_threads=num_threads)
        result = evaluate_inputs(real, fake, config, train=train, holdout=holdout)
    except (ValueError, RegistryError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    width = max(len(k) for k in result.values)
    for key, value in result.values.items():
        click.echo(f"{key:<{width}}  {value:.6g}")
    for note in result.notes:
        if note.startswith("WARNING"):
            click.echo(note, err=True)
        click.echo(f"note: {note}")
    if result.fairness is not None:
        from breastflow.evaluate.report import fairness_headline

        click.echo("\nPer group (all values in the JSON / report):")
        click.echo(fairness_headline(result.fairness).to_string(index=False, float_format="{:.4g}".format))
    if json_out is not None:
        write_json(result, json_out)
        click.echo(f"wrote {json_out}")
    if report_dir is not None:
        files = write_report(result, report_dir)
        click.echo(f"wrote report {files.markdown}")
