"""Write an evaluation's JSON, plots and a Markdown + HTML report into a folder.

Layout of ``report_dir``::

    metrics.json      values, configuration, image names
    report.md         table of values + the plots
    report.html       the same, self-contained except for the PNGs
    moments.png       moments plot (when ``moments`` was computed)
    swd.png           SWD per pyramid level (when ``swd`` was computed)
    paired.png        per-case histograms of the paired metrics (when paired)

Non-finite values (PSNR of identical pairs is ``inf``) are written to JSON as
the strings ``"inf"``, ``"-inf"``, ``"nan"`` so the file stays strict JSON.
Files are written to a temporary name and renamed, so a crash leaves no
half-written report file.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastflow.metrics.evaluate import EvaluationResult


def jsonable(value: float) -> float | str:
    """A float, or its string form when not finite."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def result_to_json(result: EvaluationResult) -> dict[str, object]:
    """The JSON document of an evaluation."""
    return {
        "values": {k: jsonable(v) for k, v in result.values.items()},
        "config": result.config.model_dump(mode="json"),
        "real_names": list(result.real_names),
        "fake_names": list(result.fake_names),
    }


def write_json(result: EvaluationResult, path: str | Path) -> Path:
    """Write :func:`result_to_json` to ``path`` atomically."""
    path = Path(path)
    _atomic_write(path, json.dumps(result_to_json(result), indent=2, allow_nan=False))
    return path


@dataclass(frozen=True)
class ReportFiles:
    """Paths written by :func:`write_report`."""

    json: Path
    markdown: Path
    html: Path
    plots: tuple[Path, ...]


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _plot_swd(result: EvaluationResult, path: Path) -> Path:
    from matplotlib.figure import Figure

    swd = result.artifacts["swd"]
    levels = list(swd.per_level)
    fig = Figure(figsize=(4.5, 3.0))
    ax = fig.subplots()
    ax.bar([str(r) for r in levels], [swd.per_level[r] for r in levels], color="steelblue")
    ax.axhline(swd.mean, color="k", linestyle="--", label=f"mean {swd.mean:.3g}")
    ax.set_xlabel("pyramid resolution (px)")
    ax.set_ylabel("SWD x 1e3")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_paired(result: EvaluationResult, path: Path) -> Path:
    from matplotlib.figure import Figure

    per_case: dict[str, np.ndarray] = result.artifacts["paired_per_case"]
    fig = Figure(figsize=(3.2 * len(per_case), 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(per_case)))
    for ax, (name, values) in zip(axes, per_case.items(), strict=True):
        finite = values[np.isfinite(values)]
        ax.hist(finite, bins=20, color="steelblue")
        ax.set_title(f"{name} (n={len(values)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def write_report(result: EvaluationResult, report_dir: str | Path) -> ReportFiles:
    """Write JSON, plots, Markdown and HTML for ``result`` into ``report_dir``.

    Args:
        result: from :func:`breastflow.metrics.evaluate.evaluate_sets`.
        report_dir: created if missing; existing report files are replaced.
    """
    from breastflow.metrics.moments import plot_moments

    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots: list[tuple[str, Path]] = []
    if "moments" in result.artifacts:
        plots.append(("Moments of the pixel distributions (red real, blue synthetic)",
                      plot_moments(result.artifacts["moments"], out / "moments.png")))
    if "swd" in result.artifacts:
        plots.append(("Sliced Wasserstein distance per pyramid level", _plot_swd(result, out / "swd.png")))
    if result.artifacts.get("paired_per_case"):
        plots.append(("Per-case paired metrics", _plot_paired(result, out / "paired.png")))
    json_path = write_json(result, out / "metrics.json")

    rows = [(k, f"{v:.6g}") for k, v in result.values.items()]
    summary = (
        f"Metrics: {', '.join(result.config.resolved_metrics())}; paired: {result.config.paired}; "
        f"{len(result.real_names)} real, {len(result.fake_names)} synthetic images."
    )
    md = ["# breastflow evaluation", "", summary, "", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    for title, p in plots:
        md += ["", f"## {title}", "", f"![{title}]({p.name})"]
    md_path = out / "report.md"
    _atomic_write(md_path, "\n".join(md) + "\n")

    body = ["<h1>breastflow evaluation</h1>", f"<p>{html.escape(summary)}</p>", "<table border='1'><tr><th>metric</th><th>value</th></tr>"]
    body += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows]
    body.append("</table>")
    for title, p in plots:
        body += [f"<h2>{html.escape(title)}</h2>", f"<img src='{html.escape(p.name)}' alt='{html.escape(title)}'>"]
    html_path = out / "report.html"
    _atomic_write(html_path, "<!doctype html><html><head><meta charset='utf-8'><title>breastflow evaluation</title></head><body>"
                  + "\n".join(body) + "</body></html>\n")
    return ReportFiles(json=json_path, markdown=md_path, html=html_path, plots=tuple(p for _, p in plots))
