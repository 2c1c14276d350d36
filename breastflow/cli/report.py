"""``breastflow report``: the synthesis report of a run's selected checkpoint (paper 003 Table 1-2, Fig 4, 7/8).

Thin: arguments -> :func:`breastflow.select.report.write_synthesis_report` -> print.
A run without ``selected.json`` (``breastflow select`` not run yet), a split
without lesion slices or a checkpoint that cannot generate exit non-zero with a
message naming it.
"""

from __future__ import annotations

import json

import click


@click.command("report")
@click.argument("store")
@click.argument("model")
@click.argument("run")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="Studies of Table 2, kinetics, vendors and the memorisation check.")
@click.option("--device", default="cpu", show_default=True, help="torch device for generation and network metrics.")
@click.option("--samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="Rows (lesion slices) of the sample grid across checkpoints (Fig 4b).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report's URIs and key figures (Table 2, lesion boxes, kinetics, vendors) as JSON.")
def report(store: str, model: str, run: str, split: str, device: str, samples: int, as_json: bool) -> None:
    """Write STORE/checkpoints/MODEL/RUN/report/report.{html,md,json} + PNGs for the checkpoint
    `breastflow select` chose (read from STORE/checkpoints/MODEL/RUN/selected.json)."""
    from breastflow.data.image_sets import InputError
    from breastflow.generate.run import GenerateError
    from breastflow.select.report import SynthesisReportError, write_synthesis_report
    from breastflow.train.checkpoint import CheckpointError

    try:
        result = write_synthesis_report(store, model, run, split=split, device=device, samples=samples)
    except (SynthesisReportError, InputError, GenerateError, CheckpointError) as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        data = result.model_dump(mode="json", by_alias=True, exclude={"markdown_text"})
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"synthesis report of {model}/{run}: {result.html}")
    click.echo(f"  markdown {result.markdown}; {len(result.figures)} figures")
    click.echo(f"  selected {result.selected}; {split} split generated into synthetic/{result.synthetic}"
               f"{' (reused)' if result.reused else ''}")
    for row in result.table2:
        values = ", ".join(f"{k}={v:.4g}" for k, v in row["values"].items()
                           if not k.endswith("_sd") and isinstance(v, float))
        click.echo(f"  {row['comparison']}: {values}")
    for note in result.notes:
        click.echo(f"  note: {note}")
