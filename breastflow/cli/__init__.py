"""The ``breastflow`` console command.

Subcommands live one per module and are imported only when invoked, so
``breastflow --help`` stays fast and a user who only ingests never imports
torch. The table below is the single, explicit list of commands.
"""

from __future__ import annotations

import importlib

import click

from breastflow import __version__

# command name -> (module, attribute, one-line help). Explicit on purpose:
# no module names are derived from strings typed by the user.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("breastflow.cli.demo", "demo", "The main job: phantom -> store -> baselines -> Pix2PixHD -> comparison."),
    "phantom": ("breastflow.cli.phantom", "phantom", "Write a deterministic phantom DICOM cohort."),
    "ingest": ("breastflow.cli.ingest", "ingest", "Ingest DICOM into the de-identified Zarr store (Dask)."),
    "catalog": ("breastflow.cli.ingest", "catalog", "Print the store's catalog of studies and series."),
    "same": ("breastflow.cli.metrics", "same", "Rank candidate checkpoints by SAMe and print the choice."),
    "evaluate": ("breastflow.cli.metrics", "evaluate", "Evaluate a synthetic image folder against a real one."),
    "train": ("breastflow.cli.train", "train", "Train a GAN family on the store with Ray Train (checkpoints, resume)."),
    "generate": ("breastflow.cli.generate", "generate", "Write a checkpoint's synthetic series into the store."),
    "select": ("breastflow.cli.select", "select", "Evaluate every checkpoint of a run on Ray Tune and pick the best (SAMe)."),
    "sweep": ("breastflow.cli.sweep", "sweep", "Tune a model's training config on Ray Tune with ASHA early stopping."),
    "report": ("breastflow.cli.select", "report", "Write the synthesis report of a run's selected checkpoint."),
    "utility": ("breastflow.cli.segmentation", "utility", "Segmentation utility: paper 003's four scenarios on Ray (Dice, Wilcoxon, report)."),
    "export-nnunet": ("breastflow.cli.segmentation", "export_nnunet", "Export a segmentation scenario as an nnU-Net v2 raw dataset."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="breastflow")
def main() -> None:
    """breastflow: breast-imaging DICOM -> de-identified Zarr -> GANs -> proven synthetic data."""
