"""``breastflow phantom``: write a deterministic phantom DICOM cohort."""

from __future__ import annotations

from pathlib import Path

import click
from pydantic import ValidationError

from breastflow.phantom.config import Modality, PhantomConfig, Profile, TransferSyntax


def _positive(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be >= 1, got {value}", ctx=ctx, param=param)
    return value


@click.command("phantom")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--studies", "-n", type=int, required=True, callback=_positive,
              help="Number of studies to write (>= 1).")
@click.option("--seed", "-s", type=click.IntRange(min=0), required=True,
              help="Master seed (>= 0); the same seed gives byte-identical files.")
@click.option("--profile", type=click.Choice([p.value for p in Profile]), default=Profile.TINY.value,
              show_default=True, help="tiny: 64-96 matrix, 16-32 slices (tests, demos); "
                                      "realistic: 320/448/512 matrix, 100-180 slices (Duke scale).")
@click.option("--modality", type=click.Choice([m.value for m in Modality]), default=Modality.MRI.value,
              show_default=True, help="mri: bilateral DCE-MRI exams; mammo: 4-view mammograms.")
@click.option("--transfer-syntax", "transfer_syntaxes", multiple=True,
              type=click.Choice([t.value for t in TransferSyntax]),
              help="Transfer syntax (repeatable); studies cycle through the given ones. "
                   "Default: explicit-le.")
@click.option("--t2-fraction", type=float, default=0.3, show_default=True,
              help="Share of MRI studies that also get a T2-weighted series (0-1).")
@click.option("--multiphase-series", is_flag=True, default=False,
              help="MRI: write each study's DCE phases (pre + posts) as one series, as GE/Philips "
                   "multi-phase exports do (TemporalPositionIdentifier, TriggerTime, AcquisitionTime per phase).")
@click.option("--workers", "-w", type=int, default=None, callback=_positive,
              show_default="one per available CPU core, at most one per study, capped by free memory",
              help="Processes writing studies in parallel (output does not depend on it).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def phantom(
    out: Path,
    studies: int,
    seed: int,
    profile: str,
    modality: str,
    transfer_syntaxes: tuple[str, ...],
    t2_fraction: float,
    multiphase_series: bool,
    workers: int | None,
    progress: bool,
) -> None:
    """Write a phantom breast-imaging cohort into OUT.

    OUT must be a new or empty folder, or an earlier phantom output (which is
    replaced). It receives phantom_config.json, cohort.csv, lesions.csv,
    phi.json, dicom/<study_id>/<series>/<instance>.dcm and (MRI)
    truth/<study_id>_lesion_mask.nii.gz. See docs/phantom.md.
    """
    from breastflow.phantom.cohort import (
        OutputFolderError,
        default_workers,
        write_cohort,
    )

    try:
        config = PhantomConfig(
            studies=studies,
            seed=seed,
            profile=Profile(profile),
            modality=Modality(modality),
            transfer_syntaxes=tuple(TransferSyntax(t) for t in transfer_syntaxes) or (TransferSyntax.EXPLICIT_LE,),
            t2_fraction=t2_fraction,
            multiphase_series=multiphase_series,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise click.UsageError(f"invalid phantom configuration: {problems}") from exc
    try:
        summary = write_cohort(out, config, workers=workers or default_workers(config), progress=progress)
    except OutputFolderError as exc:
        raise click.BadParameter(str(exc), param_hint="OUT") from exc
    click.echo(f"wrote {summary.n_studies} {config.modality.value} studies, {summary.n_lesions} lesions, "
               f"{summary.n_files} DICOM files to {summary.out_dir}")
