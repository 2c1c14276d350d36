"""The Table-3-style report of a utility run: Markdown, HTML and JSON under ``reports/utility/<experiment>/``.

Each scenario's rows show our ensemble Dice next to paper 003's, the mean
paired difference to the baseline row with its Wilcoxon p-value, and the
per-vendor means; a line per scenario says plainly whether the rows move the
way the paper's do (sign of each row's difference to the baseline).
"""

from __future__ import annotations

import html
import json
from dataclasses import replace

import numpy as np

from breastflow.segmentation.utility import RowResult, UtilityResult
from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.store.layout import utility_report_dir

REPORT_MD, REPORT_HTML, ROWS_JSON = "report.md", "report.html", "rows.json"
_HEADER = ("scenario", "train", "test", "role", "n", "Dice (ours)", "Dice (paper 003)", "Δ vs baseline",
           "Wilcoxon p", "per vendor")


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if not np.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if digits == 4 else f"{value:.{digits}f}"


def _cells(r: RowResult) -> list[str]:
    vendors = ", ".join(f"{v} {d:.3f}" for v, d in r.per_vendor.items())
    scenario = str(r.scenario) if r.scenario else f"{r.train_vendor}->{r.test_vendor}"
    return [scenario, r.train_label, r.test.replace("_", " "), r.role, str(r.n_test), _fmt(r.dice_mean),
            _fmt(r.paper_dice), _fmt(r.baseline_delta, 4), _fmt(r.wilcoxon_p), vendors]


#: Dice differences smaller than this count as no change.
NO_CHANGE = 5e-4


def direction_verdict(ours: float, paper: float) -> str:
    """``"no change"``, ``"same direction"`` or ``"NOT the paper direction"`` of our Dice difference vs the paper's."""
    if abs(ours) < NO_CHANGE:
        return "no change"
    return "same direction" if np.sign(ours) == np.sign(paper) else "NOT the paper direction"


def direction_lines(rows: tuple[RowResult, ...]) -> list[str]:
    """Per scenario: does each non-baseline row move against its baseline the way paper 003's does?"""
    lines = []
    for scenario in sorted({r.scenario for r in rows}):
        chosen = [r for r in rows if r.scenario == scenario]
        base = next((r for r in chosen if r.role == "baseline"), None)
        if base is None or base.paper_dice is None:
            continue
        verdicts = []
        for r in chosen:
            if r is base or r.paper_dice is None:
                continue
            ours, paper = r.dice_mean - base.dice_mean, r.paper_dice - base.paper_dice
            verdict = direction_verdict(ours, paper)
            verdicts.append(f"{r.train_label}: ours {ours:+.3f}, paper {paper:+.3f} ({verdict})")
        if verdicts:
            lines.append(f"Scenario {scenario} vs baseline {base.train_label}: " + "; ".join(verdicts) + ".")
    return lines


def utility_markdown(result: UtilityResult) -> str:
    """The report as Markdown."""
    out = [f"# Segmentation utility: {result.experiment}", "",
           (f"Store `{result.store}`, synthetic set `{result.synthetic}`, {result.folds}-fold ensembles "
            f"(mean softmax), Dice per test case; wall time {result.seconds:.0f} s."), ""]
    out += [f"* {note}" for note in result.notes] + ([""] if result.notes else [])
    out += ["## Table 3 analogue", "", "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    out += ["| " + " | ".join(_cells(r)) + " |" for r in result.rows]
    out += ["", "## Do the rows move as in paper 003?", ""]
    out += [f"* {line}" for line in direction_lines(result.rows)] or ["* no scenario with a baseline row"]
    if result.cross_vendor:
        out += ["", "## Cross-vendor rows (identity transform)", "", "| " + " | ".join(_HEADER) + " |",
                "|" + "---|" * len(_HEADER)]
        out += ["| " + " | ".join(_cells(r)) + " |" for r in result.cross_vendor]
    out += ["", "## Folds", "", "| training | val Dice per fold | resumed from epoch | reused |", "|---|---|---|---|"]
    for name, folds in result.trainings.items():
        out.append(f"| {name} | {', '.join(f'{o.val_dice:.3f}' for o in folds)} | "
                   f"{', '.join(str(o.start_epoch) for o in folds)} | {sum(o.reused for o in folds)}/{len(folds)} |")
    return "\n".join(out) + "\n"


def _html_table(rows: tuple[RowResult, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def utility_html(result: UtilityResult) -> str:
    """The report as a self-contained HTML page."""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    dirs = "".join(f"<li>{html.escape(line)}</li>" for line in direction_lines(result.rows))
    cross = (f"<h2>Cross-vendor rows (identity transform)</h2>{_html_table(result.cross_vendor)}"
             if result.cross_vendor else "")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Segmentation utility {result.experiment}"
            "</title><style>body{font-family:sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #999;padding:3px 8px}</style></head><body>"
            f"<h1>Segmentation utility: {html.escape(result.experiment)}</h1>"
            f"<p>Store <code>{html.escape(result.store)}</code>, synthetic set "
            f"<code>{html.escape(str(result.synthetic))}</code>, {result.folds}-fold ensembles, Dice per test case; "
            f"wall time {result.seconds:.0f} s.</p><ul>{notes}</ul><h2>Table 3 analogue</h2>"
            f"{_html_table(result.rows)}<h2>Do the rows move as in paper 003?</h2><ul>{dirs}</ul>{cross}"
            "</body></html>\n")


def write_utility_report(loc: StoreLocation, result: UtilityResult) -> UtilityResult:
    """Write ``report.md``, ``report.html`` and ``rows.json`` to ``reports/utility/<experiment>/``.

    Returns:
        ``result`` with :attr:`UtilityResult.report` naming the three store paths.
    """
    folder = utility_report_dir(result.experiment)
    paths = {"markdown": f"{folder}/{REPORT_MD}", "html": f"{folder}/{REPORT_HTML}", "json": f"{folder}/{ROWS_JSON}"}
    result = replace(result, report=paths)
    atomic_write_bytes(loc, paths["markdown"], utility_markdown(result).encode())
    atomic_write_bytes(loc, paths["html"], utility_html(result).encode())
    atomic_write_bytes(loc, paths["json"], json.dumps(result.to_json(), indent=1).encode())
    return result
