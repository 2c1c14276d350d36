"""``breastflow export-nnunet`` (a scenario's training set as an nnU-Net v2 raw dataset) and
``breastflow utility`` (paper 003's four segmentation scenarios on Ray, with the Table-3 report).

Thin: options -> :func:`breastflow.segmentation.nnunet_export.export_nnunet` ->
print. Bad input (a scenario out of range, a training set the scenario does not
have, no masks in the store, an unknown synthetic set) exits non-zero with a
message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("export-nnunet")
@click.argument("store")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--scenario", type=int, required=True, help="Paper 003 scenario, 1-4 (Table 3).")
@click.option("--train-set", "train_set", required=True,
              help="Training set of the scenario, e.g. real_pre, real_pre+syn_post, real_post+real_pre+syn_post.")
@click.option("--synthetic", default=None, help="Synthetic set (STORE/synthetic/NAME) for syn_post training sets.")
@click.option("--dataset-id", type=click.IntRange(1, 999), default=501, show_default=True,
              help="nnU-Net dataset id (500+ for your own datasets).")
@click.option("--no-n4", is_flag=True, help="Skip N4 bias-field correction (paper 003 applies it).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def export_nnunet(store: str, out: Path, scenario: int, train_set: str, synthetic: str | None, dataset_id: int,
                  no_n4: bool, as_json: bool) -> None:
    """Write STORE's cases for one training set of a scenario into OUT/DatasetXXX_<name>/ (nnU-Net v2 raw format).

    imagesTr/labelsTr hold the training items (one per case and source), imagesTs/labelsTs
    the scenario's test items, splits_final.json breastflow's patient-level folds (copy it to
    nnUNet_preprocessed/DatasetXXX_<name>/ after nnUNetv2_plan_and_preprocess).
    """
    from breastflow.generate.synthetic import SyntheticSetError
    from breastflow.segmentation.cases import NoMaskError
    from breastflow.segmentation.nnunet_export import export_nnunet as run_export
    from breastflow.segmentation.scenarios import ScenarioError

    try:
        result = run_export(store, out, scenario, train_set, synthetic=synthetic, dataset_id=dataset_id, n4=not no_n4)
    except (ScenarioError, NoMaskError, SyntheticSetError, FileExistsError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps({"folder": str(result.folder), "train_set": result.train_key,
                               "test_source": result.test_source, "n_train": result.n_train,
                               "n_test": result.n_test, "n_folds": result.n_folds}, indent=2))
        return
    click.echo(f"nnU-Net dataset {result.folder}: {result.n_train} training items ({result.train_key}), "
               f"{result.n_test} test items ({result.test_source}), {result.n_folds} folds in splits_final.json")


@click.command("utility")
@click.argument("store")
@click.option("--synthetic", default=None,
              help="Synthetic set (STORE/synthetic/NAME) written by breastflow generate; needed by syn_post rows.")
@click.option("--scenarios", default="1,2,3,4", show_default=True, help="Paper 003 scenarios (Table 3), 1-4.")
@click.option("--quick", is_flag=True, help="Reduced configuration (small patch, few epochs, 3 folds) for CPU demos.")
@click.option("--folds", type=click.IntRange(2, 20), default=None, help="Folds per training (default 5, quick 3).")
@click.option("--train-set", "train_sets", multiple=True,
              help="Keep only rows training on this set (repeatable), e.g. real_pre and real_pre+syn_post.")
@click.option("--no-cross-vendor", is_flag=True, help="Skip the cross-vendor rows.")
@click.option("--experiment", default=None, help="Checkpoint/report name (default: a content key of the config).")
@click.option("--test-splits", default="test", show_default=True,
              help="Catalog split(s) whose cases form the test set, comma-separated (e.g. val,test for a small "
                   "cohort); the other splits form the cross-validation pool.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def utility(store: str, synthetic: str, scenarios: str, quick: bool, folds: int | None, train_sets: tuple[str, ...],
            no_cross_vendor: bool, experiment: str | None, test_splits: str, as_json: bool) -> None:
    """Train 3D U-Nets on STORE in paper 003's segmentation scenarios (real vs synthetic post-contrast) and
    report Dice per row, Wilcoxon tests against the baselines, per-vendor and cross-vendor rows.

    Folds run in parallel as Ray tasks (RAY_ADDRESS or a local Ray) and resume from their checkpoints
    under STORE/checkpoints/segmentation/; the report goes to STORE/reports/utility/<experiment>/.
    """
    from breastflow.generate.synthetic import SyntheticSetError
    from breastflow.segmentation.cases import NoMaskError
    from breastflow.segmentation.scenarios import ScenarioError, parse_scenarios
    from breastflow.segmentation.utility import run_utility

    try:
        numbers = parse_scenarios(scenarios)
        result = run_utility(store, synthetic, numbers, quick=quick, rows=train_sets or None, folds=folds,
                             cross_vendor=not no_cross_vendor, experiment=experiment,
                             test_splits=[t.strip() for t in test_splits.split(",") if t.strip()])
    except (ScenarioError, NoMaskError, SyntheticSetError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    for note in result.notes:
        click.echo(f"note: {note}")
    for row in (*result.rows, *result.cross_vendor):
        where = f"scenario {row.scenario}" if row.scenario else f"{row.train_vendor}->{row.test_vendor}"
        paper = f" (paper {row.paper_dice:.3f})" if row.paper_dice is not None else ""
        click.echo(f"{where}: {row.train_label} -> {row.test}: Dice {row.dice_mean:.3f}{paper}, n={row.n_test}")
    click.echo(f"report: {result.store}/{result.report.get('markdown', '')} ({result.seconds:.0f} s)")
