"""Write an evaluation's JSON, plots and a Markdown + HTML report into a folder.

Layout of ``report_dir``::

    metrics.json      values, configuration, image names
    report.md         table of values + the plots
    report.html       the same, self-contained except for the PNGs
    moments.png       moments plot (when ``moments`` was computed)
    swd.png           SWD per pyramid level (when ``swd`` was computed)
    paired.png        per-case histograms of the paired metrics (when paired)
    cases.csv         one row per real image: metadata and per-case paired values
    fairness.csv      every metric per group (tidy: kind, grouping, group, n_real, n_fake, metric, value, status)
    privacy_<space>.png  closest synthetic/training pairs (with --train / --holdout)

The report's fairness table shows the headline values (:data:`HEADLINE`) per
group; ``fairness.csv`` and ``metrics.json`` hold every value.

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
import pandas as pd

from breastflow.evaluate.sets import EvaluationResult
from breastflow.metrics import names

#: Values shown per group in the report's fairness table (all values are in fairness.csv / JSON).
HEADLINE = (names.MSE, names.MAE, names.PSNR, names.SSIM, names.MS_SSIM, names.LPIPS, names.FID_IMG, names.FID_RAD,
            names.FRD, names.NN_ACCURACY, names.NN_ACCURACY_GAP, names.PRECISION, names.RECALL, names.DENSITY,
            names.COVERAGE, names.MOMENTS_W1, names.SWD)


def jsonable(value: float) -> float | str:
    """A float, or its string form when not finite."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (jsonable(v) if isinstance(v, float) else v.item() if isinstance(v, np.generic) else
                        None if v is pd.NA else v) for k, v in row.items()})
    return out


def result_to_json(result: EvaluationResult) -> dict[str, object]:
    """The JSON document of an evaluation."""
    doc: dict[str, object] = {
        "values": {k: jsonable(v) for k, v in result.values.items()},
        "config": result.config.model_dump(mode="json"),
        "real_names": list(result.real_names),
        "fake_names": list(result.fake_names),
    }
    if result.sources:
        doc["sources"] = dict(result.sources)
    if result.data_range is not None:
        doc["data_range"] = {k: jsonable(v) if isinstance(v, float) else v
                             for k, v in result.data_range.to_dict().items()}
    if result.notes:
        doc["notes"] = list(result.notes)
    if result.fairness is not None:
        doc["fairness"] = _records(result.fairness)
    check = result.artifacts.get("privacy")
    if check is not None:
        doc["privacy"] = {"feature_extractor": check.extractor,
                          "closest_pairs": [{**p, "distance": jsonable(p["distance"])} for p in check.closest_pairs()]}
    return doc


def fairness_headline(fairness: pd.DataFrame) -> pd.DataFrame:
    """One row per (kind, grouping, group): n, status and the :data:`HEADLINE` values as columns."""
    rows = []
    keys = ["kind", "grouping", "group"]
    for (kind, grouping, group), sub in fairness.groupby(keys, sort=False):
        row: dict[str, object] = {"kind": kind, "grouping": grouping, "group": group,
                                  "n_real": int(sub.n_real.iloc[0]), "n_fake": int(sub.n_fake.iloc[0])}
        bad = sub.status[sub.status != "ok"]
        row["status"] = "ok" if bad.empty else str(bad.iloc[0])
        for metric, value in zip(sub.metric, sub.value, strict=True):
            if metric in HEADLINE:
                row[metric] = value
        rows.append(row)
    return pd.DataFrame(rows)


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


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.6g}"
        return str(value).replace("|", "/")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return lines


def write_report(result: EvaluationResult, report_dir: str | Path) -> ReportFiles:
    """Write JSON, plots, Markdown and HTML for ``result`` into ``report_dir``.

    Args:
        result: from :func:`breastflow.evaluate.sets.evaluate_sets`.
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
    check = result.artifacts.get("privacy")
    if check is not None:
        for path in check.plot(out):
            plots.append((f"Memorisation check: closest synthetic/training pairs ({path.stem.split('_', 1)[1]})", path))
    json_path = write_json(result, out / "metrics.json")
    if result.cases is not None:
        _atomic_write(out / "cases.csv", result.cases.to_csv(index=False))
    headline = None
    if result.fairness is not None:
        _atomic_write(out / "fairness.csv", result.fairness.to_csv(index=False))
        headline = fairness_headline(result.fairness)

    rows = [(k, f"{v:.6g}") for k, v in result.values.items()]
    summary = (
        f"Metrics: {', '.join(result.config.resolved_metrics())}; paired: {result.config.paired}; "
        f"{len(result.real_names)} real, {len(result.fake_names)} synthetic images."
    )
    md = ["# breastflow evaluation", "", summary, ""]
    md += [f"- {name}: `{source}`" for name, source in result.sources.items()]
    md += [f"- note: {note}" for note in result.notes]
    md += ["", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    if headline is not None:
        md += ["", "## Fairness: metrics per group", "",
               (f"Distribution metrics need at least {result.config.min_group_size} real and synthetic images per "
               "group; smaller groups say so in `status`. Every value is in `fairness.csv`."), ""]
        md += _markdown_table(headline)
    if check is not None:
        md += ["", "## Memorisation check: closest synthetic/training pairs", "",
               (f"A synthetic image is *close* when nearer to a training image than the "
               f"{result.config.privacy_quantile:g} quantile of the held-out images' distances."), ""]
        md += _markdown_table(pd.DataFrame(check.closest_pairs()))
    for title, p in plots:
        md += ["", f"## {title}", "", f"![{title}]({p.name})"]
    md_path = out / "report.md"
    _atomic_write(md_path, "\n".join(md) + "\n")

    body = ["<h1>breastflow evaluation</h1>", f"<p>{html.escape(summary)}</p>", "<table border='1'><tr><th>metric</th><th>value</th></tr>"]
    body += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows]
    body.append("</table>")
    if result.sources or result.notes:
        body.append("<ul>" + "".join(f"<li>{html.escape(k)}: <code>{html.escape(v)}</code></li>"
                                      for k, v in result.sources.items())
                    + "".join(f"<li>note: {html.escape(n)}</li>" for n in result.notes) + "</ul>")
    if headline is not None:
        body.append("<h2>Fairness: metrics per group</h2>")
        body.append(headline.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}"))
    for title, p in plots:
        body += [f"<h2>{html.escape(title)}</h2>", f"<img src='{html.escape(p.name)}' alt='{html.escape(title)}'>"]
    html_path = out / "report.html"
    _atomic_write(html_path, "<!doctype html><html><head><meta charset='utf-8'><title>breastflow evaluation</title></head><body>"
                  + "\n".join(body) + "</body></html>\n")
    return ReportFiles(json=json_path, markdown=md_path, html=html_path, plots=tuple(p for _, p in plots))
