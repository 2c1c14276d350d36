"""``breastflow demo``: the main job on embedded defaults (see :mod:`breastflow.demo`)."""

from __future__ import annotations

import math
from pathlib import Path

import click
import pandas as pd

from breastflow.demo import DEMO_LESION_T1_SCALE, DemoResult
from breastflow.demo_model import MODEL_METRICS
from breastflow.demo_training import DemoTraining
from breastflow.demo_utility import DemoUtility, min_wilcoxon_p

#: Fold validation Dice under which the demo says plainly that its U-Nets did not learn the task.
LEARNED_DICE = 0.3
METRIC_NAMES = {"mae_lesion": "lesion-box MAE", "mae": "whole-image MAE", "psnr": "PSNR", "ssim": "SSIM"}


def _figures(result: DemoResult) -> None:
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


def _model(result: DemoResult) -> None:
    step = result.model
    if step is None:
        click.echo(f"6. model step skipped: {result.model_skipped}")
        return
    t = step.training
    trained = (f"trained epochs {step.epochs_before + 1}-{step.epochs}" if step.epochs > step.epochs_before
               else "already trained, reused")
    click.echo(f"6. {t.model} on Ray Train, run {step.run} ({trained}; {len(step.checkpoints)} checkpoints "
               f"in the store): ngf {t.ngf}, ndf {t.ndf}, {t.n_downsample_global} downsamplings, "
               f"{t.n_blocks_global} residual blocks, {t.image_size or 'stored'} px slices, batch {t.batch_size}, "
               f"{t.workers} {'GPU' if t.gpu else 'CPU'} worker(s), lr {t.lr:g}, {t.epochs} + {t.decay_epochs} "
               "decay epochs")
    click.echo(f"   objective: LSGAN + feature matching (paper 003 eq. 3); VGG19 perceptual term {t.perceptual} "
               "(no VGG weights offline)"
               + (f"; pixel L1 x{t.lambda_l1:g} added (pix2pix's term, not in eq. 3)" if t.lambda_l1 else ""))
    click.echo(f"   synthetic post_1 of the held-out studies: synthetic/{step.synthetic} "
               f"({'generated' if step.generated else 'reused'})")
    table = step.comparison
    studies = int(table["studies"].iloc[0])
    click.echo(f"   model vs baselines on {studies} held-out studies (per-case scale; lesion-box MAE over "
               f"{int(table['lesion_voxels'].iloc[0])} voxels):")
    click.echo(table[list(MODEL_METRICS)].to_string(float_format=lambda v: f"{v:.4f}"))
    for metric, lower in MODEL_METRICS.items():
        verdict = step.beats_both[metric]
        name, better = METRIC_NAMES[metric], "lower" if lower else "higher"
        if verdict is None:
            click.echo(f"   {name}: not defined here (no value), so no claim either way")
        elif verdict:
            click.echo(f"   {name} ({better} is better): the model beats both baselines")
        else:
            click.echo(f"   {name} ({better} is better): the model does NOT beat both baselines")


def _selection(result: DemoResult) -> None:
    step = result.selection
    if step is None:
        return
    sel = step.selection
    click.echo(f"7. checkpoint selection on Ray Tune ({len(sel.table)} evaluated, {len(sel.failed)} failed; "
               f"{step.split} split, {sel.criterion} over {', '.join(sel.metrics)}):")
    columns = [*sel.metrics, *[m for m in sel.extra_metrics if m not in sel.metrics], "same"]
    rows = [{"checkpoint": row["checkpoint"].rstrip("/").rsplit("/", 1)[-1],
             **{m: row.get(m, float("nan")) for m in columns}} for row in sel.table]
    click.echo(pd.DataFrame(rows).set_index("checkpoint").to_string(float_format=lambda v: f"{v:.4f}"))
    for failure in sel.failed:
        click.echo(f"   excluded {failure['checkpoint']}: {failure['error']}")
    for note in [*sel.notes, *step.notes]:
        click.echo(f"   note: {note}")
    click.echo(f"   selected: {sel.selected} (recorded in {sel.uri})")
    if step.report_html is not None:
        click.echo(f"   synthesis report ({step.report_split} split{', kept: same choice' if step.report_reused else ''}):"
                   f" {step.report_html}")


def _utility(result: DemoResult) -> None:
    from breastflow.segmentation.utility_report import direction_verdict

    step = result.utility
    if step is None:
        return
    click.echo(f"8. segmentation utility (paper 003 Table 3, scenario 2, reduced): synthetic/{step.synthetic} "
               f"({'generated' if step.generated else 'reused'}) from {step.checkpoint.rstrip('/').rsplit('/', 1)[-1]}")
    if step.result is None:
        click.echo(f"   skipped: {step.skipped}")
        return
    res = step.result
    click.echo(f"   3D U-Net (MONAI DynUNet), {res.folds}-fold ensembles trained on {step.pool} pool cases, "
               f"tested on real post_1 of {step.test} held-out cases ({'+'.join(res.test_splits)} splits):")
    rows = [{"train": r.train_label, "Dice": r.dice_mean,
             "paper 003": r.paper_dice if r.paper_dice is not None else math.nan,
             "delta": r.baseline_delta if r.baseline_delta is not None else math.nan,
             "Wilcoxon p": r.wilcoxon_p if r.wilcoxon_p is not None else math.nan, "n": r.n_test} for r in res.rows]
    click.echo(pd.DataFrame(rows).set_index("train").to_string(float_format=lambda v: f"{v:.3f}"))
    base = next((r for r in res.rows if r.role == "baseline"), None)
    for r in res.rows:
        if base is None or r is base:
            continue
        ours = r.dice_mean - base.dice_mean
        paper = (r.paper_dice if r.paper_dice is not None else math.nan) - (
            base.paper_dice if base.paper_dice is not None else math.nan)
        verdict = {"no change": "no change: the synthetic volumes did not move Dice here",
                   "same direction": f"the paper's direction (paper {paper:+.3f})"}.get(
            direction_verdict(ours, paper),
            f"NOT the paper's direction (paper {paper:+.3f}): here the synthetic volumes did not help")
        click.echo(f"   {r.train_label} vs {base.train_label}: Dice {ours:+.3f}, {verdict}")
    click.echo(f"   with {base.n_test if base else 0} test cases no Wilcoxon p can fall below "
               f"{min_wilcoxon_p(base.n_test if base else 0):.3f}: a direction on a toy cohort, not a result")
    folds = {name: [o.val_dice for o in outcomes] for name, outcomes in res.trainings.items()}
    click.echo("   fold validation Dice (each training set's own sources): "
               + "; ".join(f"{name} {', '.join(f'{v:.3f}' for v in values)}" for name, values in folds.items()))
    best = max((v for values in folds.values() for v in values if math.isfinite(v)), default=float("nan"))
    if not best >= LEARNED_DICE:
        click.echo(f"   the U-Nets barely learned in this CPU budget (best fold validation Dice {best:.3f} < "
                   f"{LEARNED_DICE}): this row shows the machinery, not paper 003's claim; run breastflow utility "
                   "with the full configuration (on a GPU) for that")
    for note in res.notes:
        click.echo(f"   note: {note}")
    if res.report:
        click.echo(f"   report: {res.store.rstrip('/')}/{res.report.get('html', res.report.get('markdown', ''))}")


def _timings(timings: dict[str, float]) -> None:
    steps = ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if math.isfinite(v))
    click.echo(f"wall seconds: {steps}; total {sum(timings.values()):.1f}")


@click.command("demo")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path), default="breastflow-demo")
@click.option("--studies", type=click.IntRange(2, 1000), default=24, show_default=True,
              help="Phantom DCE-MRI studies to generate (tiny profile).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Phantom and split seed.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Dask LocalCluster workers, when the cohort is large enough to ingest on a cluster.")
@click.option("--train-epochs", type=click.IntRange(0), default=DemoTraining().total_epochs, show_default=True,
              help="Pix2PixHD training epochs (the decay share kept); 0 skips the model step.")
@click.option("--utility-epochs", type=click.IntRange(0), default=DemoUtility().epochs, show_default=True,
              help="Epochs per segmentation fold of the reduced scenario-2 row; 0 skips that step.")
@click.option("--lesion-t1-scale", type=click.FloatRange(0.05, 2.0), default=DEMO_LESION_T1_SCALE, show_default=True,
              help="Phantom lesions' pre-contrast T1 ratio scale: below 1 makes them hypointense masses before "
                   "contrast (1.0: nearly isointense, the phantom's default). A new value needs a new OUT.")
def demo(out: Path, studies: int, seed: int, workers: int, train_epochs: int, utility_epochs: int,
         lesion_t1_scale: float) -> None:
    """Run every stage that exists today on a phantom cohort written to OUT.

    Phantom DICOM -> de-identified Zarr store (in-process, or Dask for large cohorts) -> catalog ->
    baseline pre -> post-contrast evaluation with paired metrics and SAMe ->
    contrast-kinetics curve types measured on the stored phases ->
    Pix2PixHD trained briefly on Ray Train (local instance), the held-out post_1 generated and
    compared with the baselines -> every checkpoint evaluated on Ray Tune, the best chosen by
    SAMe, the synthesis report written -> 3D U-Nets trained on real pre vs real pre + synthetic post
    and tested on real post (paper 003 scenario 2, reduced). A second run continues or reuses the training run.
    Uses BREASTFLOW_PSEUDONYM_KEY if set, else a random key kept in OUT/pseudonym.key.
    """
    from breastflow.demo import run_demo

    training = DemoTraining().with_total_epochs(train_epochs)
    click.echo(f"breastflow demo: {studies} phantom studies, seed {seed}, lesion pre-contrast T1 scale "
               f"{lesion_t1_scale:g} -> {out}")
    try:
        result = run_demo(out, studies=studies, seed=seed, workers=workers, training=training,
                          progress=lambda line: click.echo(f"   ... {line}"),
                          utility=DemoUtility(epochs=utility_epochs), lesion_t1_scale=lesion_t1_scale)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    _figures(result)
    _model(result)
    _selection(result)
    _utility(result)
    _timings(result.timings)
