"""Markdown and HTML of the synthesis report, rendered from one list of blocks (same content in both).

Images are relative PNG names, so the HTML opens from the report folder and the
Markdown works as a Prefect artifact next to the uploaded PNGs.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from breastflow.metrics import names

#: Section titles, in report order (the tests check each is present).
SECTIONS = ("Table 1: checkpoints", "Fig 4a: SAMe per checkpoint", "Fig 4b: samples across checkpoints",
            "Table 2: held-out image quality", "Lesion boxes", "Contrast kinetics", "Per-vendor breakdown",
            "Memorisation check", "Notes")
FIGURE_TITLES = {
    "fig4a": "SAMe (blue) and its scaled metrics per checkpoint (0 best, 1 worst)",
    "fig4b": "The same lesion slices: real pre | real post | each checkpoint's synthetic post (* selected)",
    "fig7": "Lesion mean per phase over lesions, real (grey) vs synthetic (red)",
    "fig8": "Lesion mean per phase per lesion: o real, x synthetic, size ~ SD",
    "enhancement": "Initial enhancement per lesion (post_1 / pre - 1), synthetic vs real",
}


def fmt(value: object, sd: object = None) -> str:
    """A number with 4 significant digits (``mean ± sd`` when an SD is given); empty for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not isinstance(value, (int, float)):
        return str(value)
    text = f"{value:.4g}"
    if sd is not None and not (isinstance(sd, float) and math.isnan(sd)):
        text += f" ± {sd:.3g}"
    return text


def _metric_columns(rows: Sequence[dict], key: str | None) -> list[str]:
    cols: list[str] = []
    for row in rows:
        values = row if key is None else row[key]
        for k in values:
            if k not in cols and not k.endswith(names.SD_SUFFIX) and isinstance(values[k], (int, float)) \
                    and not isinstance(values[k], bool):
                cols.append(k)
    return cols


def _table1(report: dict) -> list:
    rows = report["table1"]
    ranked = list(report["metrics"])
    extra = [*report.get("extra_metrics", []), *names.ROI_METRICS.values()]
    metrics = [m for m in dict.fromkeys(ranked + extra) if any(m in r for r in rows)]
    score = (report.get("criterion") or "same") != "same" and any("score" in r for r in rows)
    header = ["checkpoint", "synthetic set", *[m + (" (ranked)" if m in ranked else "") for m in metrics], "SAMe",
              *(["score"] if score else [])]
    body = [[f"ep{r.get('epoch', '?')}{' (selected)' if r['checkpoint'] == report['selected'] else ''}",
             str(r.get("synthetic") or ""), *[fmt(r.get(m), r.get(names.sd_name(m))) for m in metrics],
             fmt(r.get("same")), *([fmt(r.get("score"))] if score else [])] for r in rows]
    base = report.get("table1_baseline")
    if base is not None:
        body.append([f"{base['comparison']} (baseline)", "", *[fmt(base["values"].get(m), base["values"].get(
            names.sd_name(m))) for m in metrics], "", *([""] if score else [])])
    blocks: list = [("h2", SECTIONS[0]),
                    ("p", (f"Criterion {report.get('criterion') or 'same'} over {', '.join(report['metrics'])} on "
                           f"{report['selection']}; dataset version {report.get('dataset_version')}. Raw values, "
                           "mean ± SD over slice pairs where per pair (paper 003 Table 1); the last row compares the "
                           "real pre-contrast slices with the real post-contrast ones (the paper's baseline).")),
                    ("table", header, body)]
    failed = report["failed"]
    blocks.append(("p", f"Failed checkpoints ({len(failed)}), excluded from the selection:" if failed
                   else "Failed checkpoints: none."))
    if failed:
        blocks.append(("table", ["checkpoint", "error"], [[f["checkpoint"], f["error"]] for f in failed]))
    return blocks


def _table2(report: dict) -> list:
    rows = report["table2"]
    metrics = _metric_columns(rows, "values")
    header = ["comparison", "dataset", "n", *metrics]
    body = [[r["comparison"], r["dataset"], str(r["n"]),
             *[fmt(r["values"].get(m), r["values"].get(names.sd_name(m))) for m in metrics]] for r in rows]
    return [("h2", SECTIONS[3]),
            ("p", (f"Selected checkpoint {report['selected']} on the {report['split']} split (synthetic set "
                   f"{report['synthetic']}{', reused' if report['reused'] else ', generated now'}); paired by "
                   "(study, slice), lesion slices, per-case scale. 'Real pre' is the paper's upper-bound baseline; "
                   "subtraction images are post - pre clipped at 0 (paper 003 Table 2).")),
            ("table", header, body)]


def _boxes(report: dict) -> list:
    body = [[r["kind"], r["target"], str(r["studies"]), str(r["voxels"]), fmt(r["mae"], r["mae_sd"]),
             fmt(r["mse"], r["mse_sd"])] for r in report["lesion_boxes"]]
    return [("h2", SECTIONS[4]),
            ("p", ("MAE / MSE over the voxels of the committed lesion boxes on the selected slices, per study; "
                   "mean ± SD over studies.")),
            ("table", ["comparison", "target", "studies", "voxels", "mae", "mse"], body)]


def _kinetics(report: dict, figs: dict[str, str]) -> list:
    k = report["kinetics"]
    blocks: list = [("h2", SECTIONS[5])]
    if not k:
        return blocks + [("p", "No lesion box in the split: no kinetics measured.")]
    blocks.append(("p", (f"Mean intensity in each lesion box per phase ({' -> '.join(k['phases'])}), real vs "
                         f"synthetic, one scale per lesion's study (pre-contrast body mean); {k['lesions']} lesions "
                         "(paper 003 Fig 7/8).")))
    if k["multi_phase"]:
        blocks.append(("table", ["curve-type accuracy", "Cohen's kappa", "phase-order agreement"],
                       [[fmt(k[names.KINETICS_CURVE_ACCURACY]), fmt(k[names.KINETICS_CURVE_KAPPA]),
                         fmt(k["kinetics_order_agreement"])]]))
        blocks.append(("table", ["lesion", "real curve", "synthetic curve"],
                       [[c["case"], c["real"], c["synthetic"]] for c in k["curves"]]))
    else:
        blocks.append(("p", ("This generator synthesises post_1 only: curve types (persistent / plateau / washout) "
                             "need the delayed phases, so they need a multi-phase (joint) model. Shown instead: the "
                             "initial enhancement pre -> post_1 per lesion, real vs synthetic.")))
        blocks.append(("table", ["lesions", "enhancement MAE", "bias (syn - real)", "correlation",
                                 "direction agreement"],
                       [[str(k["lesions"]), fmt(k["enhancement_mae"]), fmt(k["enhancement_bias"]),
                         fmt(k["enhancement_correlation"]), fmt(k["order_agreement"])]]))
    for key in ("fig7", "fig8", "enhancement"):
        if key in figs:
            blocks.append(("img", FIGURE_TITLES[key], figs[key]))
    return blocks


def _vendors(report: dict) -> list:
    rows = report["vendors"]
    blocks: list = [("h2", SECTIONS[6])]
    if not rows:
        return blocks + [("p", "No vendor labels in the selection: no breakdown.")]
    metrics = _metric_columns(rows, "values")
    body = [[r["comparison"], r["vendor"], str(r["n"]),
             *[fmt(r["values"].get(m), r["values"].get(names.sd_name(m))) for m in metrics], r["status"]]
            for r in rows]
    return blocks + [("p", ("Table 2 per vendor (per-case metrics: mean ± SD over the vendor's pairs; set metrics "
                            "only for groups of at least min_group_size images, else the status says why).")),
                     ("table", ["comparison", "vendor", "n", *metrics, "status"], body)]


def _memorisation(report: dict, figs: dict[str, str]) -> list:
    m = report["memorisation"]
    if not m:
        return [("h2", SECTIONS[7]), ("p", "Not computed (see the notes).")]
    values = m["values"]
    blocks: list = [("h2", SECTIONS[7]),
                    ("p", (f"Distance of each synthetic {report['split']} slice to its nearest training slice "
                           f"(train: {m['train']}), against the held-out real slices' distances (holdout: "
                           f"{m['holdout']}). A synthetic slice is close when nearer than the {m['quantile']:g} "
                           "quantile of the held-out distances; about that share is expected when nothing is copied.")),
                    ("table", ["value", ""], [[k, fmt(v)] for k, v in values.items()]),
                    ("table", ["space", "synthetic", "closest training slice", "distance", "close"],
                     [[c["space"], c["synthetic"], c["train"], fmt(c["distance"]), str(c["close"])]
                      for c in m["closest"]])]
    for key, name in figs.items():
        if key.startswith("privacy_"):
            blocks.append(("img", f"Closest synthetic / training pairs ({key.split('_', 1)[1]})", name))
    return blocks


def blocks_of(report: dict, figures: Sequence[tuple[str, str]]) -> list:
    """The report as blocks: ``("h1"|"h2"|"p", text)``, ``("table", header, rows)``, ``("img", title, file)``."""
    figs = dict(figures)
    blocks: list = [("h1", f"Synthesis report: {report['model']} / {report['run']}"),
                    ("p", (f"Selected checkpoint: {report['selected']} ({report.get('criterion') or 'same'}). "
                           "Only study pseudonyms appear in this report."))]
    blocks += _table1(report)
    for key, title in (("fig4a", SECTIONS[1]), ("fig4b", SECTIONS[2])):
        blocks.append(("h2", title))
        blocks.append(("img", FIGURE_TITLES[key], figs[key]) if key in figs else ("p", "Not available (see notes)."))
    blocks += _table2(report) + _boxes(report) + _kinetics(report, figs) + _vendors(report)
    blocks += _memorisation(report, figs)
    blocks += [("h2", SECTIONS[8]), ("ul", report["notes"] or ["none"])]
    return blocks


def _md_cell(text: str) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def to_markdown(blocks: list) -> str:
    """Markdown of :func:`blocks_of`."""
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            lines += [("# " if kind == "h1" else "## ") + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "img":
            lines += [f"![{block[1]}]({block[2]})", "", f"*{block[1]}*", ""]
        else:
            header, rows = block[1], block[2]
            lines += ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""]
    return "\n".join(lines)


def to_html(blocks: list, title: str) -> str:
    """Self-contained HTML of :func:`blocks_of` (inline style, PNGs by relative name)."""
    e = html.escape
    out = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:8px 0}"
            "td,th{border:1px solid #999;padding:3px 6px;font-size:13px}img{max-width:100%}</style></head><body>")]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in block[1]) + "</ul>")
        elif kind == "img":
            out.append(f"<figure><img src='{e(block[2])}' alt='{e(block[1])}'><figcaption>{e(block[1])}"
                       "</figcaption></figure>")
        else:
            out.append("<table><tr>" + "".join(f"<th>{e(str(h))}</th>" for h in block[1]) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
                       + "</table>")
    return "\n".join(out) + "\n</body></html>\n"


def render(report: dict, figures: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """``(markdown, html)`` of the report data (:func:`breastflow.select.report.write_synthesis_report`)."""
    blocks = blocks_of(report, figures)
    return to_markdown(blocks), to_html(blocks, f"breastflow synthesis report {report['model']}/{report['run']}")
