"""``breastflow demo``: the main job on embedded defaults (see :mod:`breastflow.demo`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path), default="breastflow-demo")
@click.option("--studies", type=click.IntRange(2, 1000), default=12, show_default=True,
              help="Phantom DCE-MRI studies to generate (tiny profile).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Phantom and split seed.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Dask LocalCluster workers, when the cohort is large enough to ingest on a cluster.")
def demo(out: Path, studies: int, seed: int, workers: int) -> None:
    """Run every stage that exists today on a phantom cohort written to OUT.

    Phantom DICOM -> de-identified Zarr store (in-process, or Dask for large cohorts) -> catalog ->
    baseline pre -> post-contrast evaluation with paired metrics and SAMe ->
    contrast-kinetics curve types measured on the stored phases.
    Uses BREASTFLOW_PSEUDONYM_KEY if set, else a random key kept in OUT/pseudonym.key.
    """
    from breastflow.demo import run_demo

    click.echo(f"breastflow demo: {studies} phantom studies, seed {seed} -> {out}")
    try:
        result = run_demo(out, studies=studies, seed=seed, workers=workers)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    summary = result.ingest_summary
    click.echo(f"1. phantom cohort: {result.cohort_dir}")
    click.echo(f"2. ingest -> {result.store}: new {summary['new']}, skipped {summary['skipped']}, "
               f"quarantined {summary['quarantined']}, failed {summary['failed']} "
               f"(executor {summary['executor']})")
    catalog = result.catalog
    per_study = catalog.drop_duplicates("study")
    click.echo(f"3. catalog: {len(catalog)} series in {len(per_study)} studies; "
               f"splits {per_study['split'].value_counts().to_dict()}; "
               f"vendors {per_study['vendor'].value_counts().to_dict()}")
    click.echo(f"4. baseline pre -> post_1 on {len(result.eval_studies)} studies ({result.eval_set}; "
               "full resolution, per-case scale):")
    click.echo(result.baselines.to_string(float_format=lambda v: f"{v:.4f}"))
    click.echo(f"   SAMe picks: {result.same_choice}")
    kinetics = result.kinetics
    agree = int((kinetics["designed"] == kinetics["measured"]).sum())
    click.echo(f"5. contrast kinetics measured on the stored phases: {agree}/{len(kinetics)} annotated lesions "
               "have the curve type the phantom designed")
    if agree < len(kinetics):
        click.echo(kinetics[kinetics["designed"] != kinetics["measured"]].to_string(index=False))
