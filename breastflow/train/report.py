"""Markdown summaries of a training run and of a generation run (what the Prefect flow publishes as artifacts).

Plain text builders, no Prefect: ``flows/train.py`` hands their output to
``create_markdown_artifact``. Everything shown is PHI-free: run names, store
URIs of checkpoints and synthetic sets, losses, counts.
"""

from __future__ import annotations

from breastflow.generate.config import GenerateResult
from breastflow.train.checkpoint import epoch_of_dir
from breastflow.train.follow import FollowedRun


def is_url(uri: str | None) -> bool:
    """Whether a browser can open ``uri`` as it is (``http(s)://``); local paths and ``s3://`` cannot."""
    return bool(uri) and uri.split("://", 1)[0] in ("http", "https")


def selection_base(store: str) -> str:
    """The store part of a selection string: ``store:///abs/path`` locally, the URL itself for ``s3://``."""
    return store if "://" in store else f"store://{store}"


def training_markdown(followed: FollowedRun) -> str:
    """Summary of a finished run: epochs, dataset version, Ray dashboard link, final losses, checkpoint URIs."""
    result = followed.result
    lines = [
        f"# Training run `{result.run}` ({followed.model})",
        "",
        f"* epochs: **{result.epochs}** of {followed.total_epochs}",
        f"* run folder: `{result.run_uri}` (`losses.csv`, `train_run.json`, `epoch_<N>/`)",
        f"* dataset version: `{result.dataset_version}`",
    ]
    if followed.dashboard_url:
        lines.append(f"* Ray dashboard: [{followed.dashboard_url}]({followed.dashboard_url}) "
                     "(*Train* tab: workers, logs, metrics per epoch; reachable while the cluster runs)")
    else:
        lines.append("* Ray dashboard: not available (Ray ran without a dashboard, or the run was already complete)")
    final = followed.final_losses
    lines += ["", f"## Final losses (mean over epoch {result.epochs})", ""]
    if final:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {value:.6g} |" for name, value in sorted(final.items())]
    else:
        lines.append("No epoch finished.")
    lines += ["", f"## Checkpoints ({len(result.checkpoints)})", ""]
    if result.checkpoints:
        lines += ["| epoch | checkpoint |", "|---|---|"]
        lines += [f"| {epoch_of_dir(uri)} | `{uri}` |" for uri in result.checkpoints]
    else:
        lines.append("None written.")
    if followed.samples:
        lines += ["", f"Last sample grid: `{followed.samples}`"]
    return "\n".join(lines) + "\n"


def samples_markdown(followed: FollowedRun) -> str:
    """Where the last sample grid (pre | real post | synthetic | |difference|) is.

    Prefect shows an image only from a URL a browser can open; a store path
    (local or ``s3://``) is listed as text, with how to view it.
    """
    result = followed.result
    if not followed.samples:
        return f"# Sample grid of `{result.run}`\n\nNo checkpoint with a sample grid yet.\n"
    epoch = epoch_of_dir(followed.samples.rsplit("/", 1)[0])
    lines = [f"# Sample grid of `{result.run}`, epoch {epoch}", "",
             "Columns: pre | real post | synthetic | |difference|, one row per fixed sample.", ""]
    if is_url(followed.samples):
        lines.append(f"![samples, epoch {epoch}]({followed.samples})")
    else:
        lines += [f"File: `{followed.samples}`", "",
                  ("It lives in the store (not a web address), so it is listed rather than shown: open it "
                   "on the flow's host, or copy it (`aws s3 cp` / `fsspec`) from an `s3://` store.")]
    return "\n".join(lines) + "\n"


def generate_markdown(result: GenerateResult, store: str) -> str:
    """Summary of a generation run: the synthetic set, what it holds, and the selection that reads it."""
    series = result.series[0] if result.series else "post_1"
    lines = [
        f"# Synthetic set `{result.name}`",
        "",
        f"* from checkpoint `{result.checkpoint}` ({result.model}, epoch {result.epoch})",
        f"* dataset version: `{result.dataset_version}`",
        f"* folder: `{result.uri}`",
        f"* series: {', '.join(result.series)}; {len(result.studies)} studies, {result.slices} slices per series",
        f"* read it: `{selection_base(store)}?synthetic={result.name}&series={series}`",
    ]
    return "\n".join(lines) + "\n"
