"""Figures of the synthesis report (matplotlib ``Figure`` objects, no pyplot state, Agg only).

* :func:`plot_same_bars`: paper 003 Fig 4a, SAMe and its scaled components per checkpoint;
* :func:`plot_sample_grid`: Fig 4b, the same slices as real pre | real post | each checkpoint's synthetic post;
* :func:`plot_enhancement`: pre -> post_1 lesion enhancement, real vs synthetic (single-phase models).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_same_bars(table: Sequence[dict], metrics: Sequence[str], selected: str, path: str | Path) -> Path:
    """Grouped bars per checkpoint: each metric's scaled value (0 best, 1 worst) and SAMe (blue, widest).

    Args:
        table: selected.json rows (``checkpoint``, ``epoch``, ``same``, ``scaled``).
        metrics: the SAMe metrics, in column order.
        selected: checkpoint URI of the chosen row (its label is marked with ``*``).
        path: PNG to write.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    rows = list(table)
    x = np.arange(len(rows))
    width = 0.8 / (len(metrics) + 1)
    fig = Figure(figsize=(max(5.0, 1.1 * len(rows) * (len(metrics) + 1) / 3), 3.6))
    ax = fig.subplots()
    cmap = colormaps["Set2"]
    for k, metric in enumerate(metrics):
        values = [float((r.get("scaled") or {}).get(metric, np.nan)) for r in rows]
        ax.bar(x + k * width, values, width, color=cmap(k % 8), label=metric)
    ax.bar(x + len(metrics) * width, [float(r.get("same", np.nan)) for r in rows], width, color="tab:blue",
           edgecolor="k", label="SAMe")
    labels = [f"{'*' if r['checkpoint'] == selected else ''}ep{r.get('epoch', '?')}" for r in rows]
    ax.set_xticks(x + 0.4 - width / 2, labels)
    ax.set_ylim(0.0, 1.3)
    ax.set_ylabel("scaled value (0 = best)")
    ax.set_title("SAMe and its scaled metrics per checkpoint (* selected)", fontsize=9)
    ax.legend(fontsize=7, ncol=min(4, len(metrics) + 1))
    return _save(fig, Path(path))


def plot_sample_grid(rows: Sequence[tuple[str, Sequence[np.ndarray | None]]], columns: Sequence[str],
                     path: str | Path) -> Path:
    """A grid of slices: one row per sample (label, images per column; ``None`` = not available).

    Each row shares one grey window, ``[0, 99.5th percentile of its real post image]``
    (column 1), so enhancement differences stay visible across columns.
    """
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), len(columns)
    fig = Figure(figsize=(1.7 * n_cols, 1.8 * n_rows + 0.3))
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, (label, images) in enumerate(rows):
        reference = images[1] if len(images) > 1 and images[1] is not None else images[0]
        vmax = float(np.percentile(reference, 99.5)) if reference is not None else 1.0
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(image, cmap="gray", vmin=0.0, vmax=vmax or 1.0, interpolation="nearest")
            if r == 0:
                ax.set_title(columns[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=6)
    return _save(fig, Path(path))


def plot_enhancement(enhancement: pd.DataFrame, path: str | Path) -> Path:
    """Per-lesion initial enhancement ``post_1 / pre - 1``: synthetic against real, with the identity line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
    real, fake = enhancement["real"].to_numpy(), enhancement["synthetic"].to_numpy()
    ax.scatter(real, fake, marker="x", color="red")
    lo = float(np.nanmin(np.concatenate([real, fake, [0.0]])))
    hi = float(np.nanmax(np.concatenate([real, fake, [0.0]])))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("real lesion enhancement (post_1 / pre - 1)")
    ax.set_ylabel("synthetic lesion enhancement")
    ax.set_title(f"initial enhancement per lesion (n={len(enhancement)})", fontsize=9)
    return _save(fig, Path(path))
