"""``breastflow ingest`` and ``breastflow catalog``: DICOM -> de-identified Zarr store, and its table."""

from __future__ import annotations

import json
import sys

import click

from breastflow.ingest.report import Outcome, terminal_lines


@click.command("ingest")
@click.argument("source")
@click.argument("store")
@click.option("--workers", type=click.IntRange(1, 512), default=2, show_default=True,
              help="LocalCluster worker processes, or threads in-process (ignored with --scheduler).")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler, e.g. tcp://host:8786.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Patient-level split seed (must match the store's once set).")
@click.option("--threads", is_flag=True, help="Use a LocalCluster of threads instead of processes.")
@click.option("--shard-slices", type=click.IntRange(1), default=16, show_default=True,
              help="Axial slices per shard (storage object).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write the full operator report (with source paths) to this local JSON file.")
@click.option("--annotations", "annotations_path", default=None, metavar="PATH",
              help="Lesion annotations: a phantom folder (cohort.csv, lesions.csv, truth/) or a Duke-style "
                   ".csv/.xlsx table (Patient ID, Start Row ... End Slice). Default: the phantom folder around "
                   "SOURCE when SOURCE is <folder>/dicom and <folder> holds cohort.csv and lesions.csv.")
@click.option("--no-annotations", is_flag=True, help="Ignore annotations, even a detected phantom layout.")
@click.option("--annotation-index-base", type=click.IntRange(0, 1), default=0, show_default=True,
              help="First index used by the annotation table's bounds (1 for 1-based tables).")
@click.option("--in-process/--cluster", "in_process", default=None,
              help="Run in this process (threads) or on a Dask cluster. Default: in-process for small runs "
                   "(no cluster start), a LocalCluster for large ones; always the cluster with --scheduler.")
@click.option("--accept", type=click.Choice(["breast", "any"]), default="breast", show_default=True,
              help="breast: store MR series as pre/post/t2 only with breast evidence in the headers (body part, "
                   "descriptions, coil, field of view, a dynamic set with contrast); any: store every acquired "
                   "MR/MG series with a role from timing (untagged data).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def ingest(source: str, store: str, workers: int, scheduler: str | None, seed: int, threads: bool,
           shard_slices: int, report_path: str | None, annotations_path: str | None, no_annotations: bool,
           annotation_index_base: int, in_process: bool | None, accept: str, quiet: bool) -> None:
    """Ingest DICOM under SOURCE (folder or s3:// URL) into the Zarr STORE (folder or s3:// URL).

    Lesion boxes and masks are stored beside the images when annotations are
    given or detected (see --annotations). Needs BREASTFLOW_PSEUDONYM_KEY.
    Exit status: 0 everything landed (or was already there), 3 partial (some
    input or annotation quarantined, or failed), 1 failure.
    """
    from tqdm import tqdm

    from breastflow.deid.pseudonym import PseudonymKeyError
    from breastflow.dicom.classify import AcceptPolicy
    from breastflow.ingest.annotations import AnnotationOptions
    from breastflow.ingest.config import ClusterConfig, Executor, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.store.splits import SplitConfig
    from breastflow.store.zarr_io import ArrayLayout

    if in_process and scheduler:
        raise click.UsageError("--in-process and --scheduler exclude each other")
    executor = {None: Executor.AUTO, True: Executor.IN_PROCESS, False: Executor.DASK}[in_process]
    config = IngestConfig(
        cluster=ClusterConfig(scheduler=scheduler, workers=workers, processes=not threads, executor=executor),
        array_layout=ArrayLayout(shard_slices=shard_slices),
        splits=SplitConfig(seed=seed),
        accept=AcceptPolicy(accept),
    )
    if no_annotations and annotations_path:
        raise click.UsageError("--annotations and --no-annotations exclude each other")
    annotations = AnnotationOptions(path=annotations_path, auto_detect=not no_annotations,
                                    index_base=annotation_index_base)
    bar = tqdm(total=0, unit="series", disable=quiet, file=sys.stderr, desc="ingest")

    def on_plan(plan) -> None:  # type: ignore[no-untyped-def]
        bar.reset(total=len(plan.jobs) + len(plan.annotation_jobs))
        bar.write(f"found {plan.n_files} files: {len(plan.jobs)} series and {len(plan.annotation_jobs)} "
                  f"annotated studies to ingest, {sum(o.outcome is Outcome.SKIPPED for o in plan.outcomes)} "
                  "already in the store")

    try:
        report = run_ingest(source, store, config, progress=lambda _: bar.update(1), on_plan=on_plan,
                            annotations=annotations)
    except (PseudonymKeyError, FileNotFoundError, ValueError) as err:
        bar.close()
        raise click.ClickException(str(err)) from err
    bar.close()
    summary = report.summary()
    click.echo(f"new {summary['new']}, skipped {summary['skipped']}, quarantined {summary['quarantined']}, "
               f"failed {summary['failed']}, ignored {summary['ignored']}; annotations new "
               f"{summary['annotations_new']}, skipped {summary['annotations_skipped']} "
               f"({summary['slices_written']} slices, {summary['seconds']} s; run {report.run_id})")
    for line in terminal_lines(report):
        click.echo(f"  {line}")
    if report_path:
        with open(report_path, "w", encoding="utf-8") as handle:
            json.dump(report.to_operator_dict(), handle, indent=1)
    sys.exit(int(report.exit_status()))


@click.command("catalog")
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print JSON records instead of a table.")
def catalog(store: str, as_json: bool) -> None:
    """Print the catalog of STORE: one row per committed series, with study columns and split."""
    from breastflow.store.catalog import read_catalog
    from breastflow.store.fs import StoreLocation

    frame = read_catalog(StoreLocation.from_url(store))
    if as_json:
        click.echo(frame.to_json(orient="records", indent=1))
        return
    if frame.empty:
        click.echo("catalog is empty (nothing committed yet)")
        return
    shown = frame[["study", "series", "split", "vendor", "field_strength_t", "phase_offset_s", "z", "y", "x",
                   "dtype"]].copy()
    shown["study"] = shown["study"].str.slice(0, 12)
    click.echo(shown.to_string(index=False))
    click.echo(f"{frame.study.nunique()} studies, {len(frame)} series, "
               f"{frame.patient.nunique()} patients; splits: "
               + ", ".join(f"{k} {v}" for k, v in frame.drop_duplicates("patient").split.value_counts().items()))
