"""The demo's selection step: every checkpoint of the demo's run evaluated on Ray Tune, the best chosen, the report.

Step 7 of :mod:`breastflow.demo`, through the project's own stages only:
``breastflow select``'s library call (:func:`breastflow.select.run.select_checkpoints`:
one Ray Tune trial per checkpoint, SAMe over paper 003's metrics that can run
here, ``selected.json`` in the store) and ``breastflow report``'s
(:func:`breastflow.select.report.write_synthesis_report`: Table 1/2, Fig 4,
kinetics, vendors, memorisation) on the test split.

Selection runs on the validation split and the report on the test split. A
small cohort's patient-level split can leave one of them without an annotated
study: then both use the other one and the demo says that the report's figures
are optimistic (chosen and reported on the same studies).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from breastflow.demo import POST1
from breastflow.select.results import SelectionResult

#: metrics of the demo's selection: paper 003's SAMe set (FID_Rad needs RadImageNet weights, left out with a
#: note when they are not configured); extra columns: PSNR (MS-SSIM, FRD and LPIPS cost more than the demo's budget)
DEMO_EXTRA_METRICS: tuple[str, ...] = ("psnr",)


@dataclass(frozen=True)
class SelectStep:
    """What the demo's selection step produced.

    Attributes:
        selection: the selection's record (``selected.json``): table, choice, failures, notes.
        split: the split the checkpoints were evaluated on (``val``, or ``test`` when val is empty).
        report_html: the synthesis report of the chosen checkpoint (``report.html``).
        report_reused: the report on the store was already of this choice (nothing re-evaluated) and was kept.
        report_split: the split of the report (``test``; ``val`` when the split left no annotated test study).
        notes: what the step decided for the user.
    """

    selection: SelectionResult
    split: str
    report_html: str | None
    report_reused: bool
    report_split: str
    notes: tuple[str, ...] = ()


def annotated_studies(catalog: pd.DataFrame, split: str) -> list[str]:
    """Studies of ``split`` with a ``post_1`` series and committed lesion annotations (what selection reads)."""
    rows = catalog[(catalog["split"] == split) & (catalog["series"] == POST1)]
    if "annotated" in rows.columns:
        rows = rows[rows["annotated"].astype(bool)]
    return sorted(rows["study"].unique())


def run_select_step(store: str, catalog: pd.DataFrame, model: str, run: str, notify: Callable[[str], None],
                    timings: dict[str, float]) -> SelectStep:
    """Select among the run's checkpoints on Ray Tune and write the synthesis report on the test split.

    Args:
        store: the demo's store; catalog: its catalog.
        model, run: the demo's training run (``checkpoints/<model>/<run>/``).
        notify: receives progress lines.
        timings: wall seconds of ``select`` and ``report`` are added here.

    Raises:
        ValueError: neither the val nor the test split holds an annotated study.
        and what selection and the report raise.
    """
    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.select.report import write_synthesis_report
    from breastflow.select.run import SelectConfig, select_checkpoints

    notes: list[str] = []
    val, test = annotated_studies(catalog, "val"), annotated_studies(catalog, "test")
    if not val and not test:
        raise ValueError("neither the val nor the test split holds an annotated study; nothing to select on")
    split = "val" if val else "test"
    if split == "test":
        notes.append("the patient-level split left no annotated val study: checkpoints are selected on the test "
                     "split, so the report's test figures are optimistic (chosen and reported on the same studies)")
    notify(f"selecting among the checkpoints of {model}/{run} on Ray Tune ({split} split, "
           f"{len(val if val else test)} studies)")
    config = SelectConfig(store=store, model=model, run=run, split=split, extra_metrics=DEMO_EXTRA_METRICS,
                          evaluation=EvaluationConfig(allow_clipping=True))
    start = time.perf_counter()
    selection = select_checkpoints(config)
    timings["select"] = time.perf_counter() - start
    report_split = "test" if test else "val"
    if not test:
        notes.append("the patient-level split left no annotated test study: the report is on the val split the "
                     "checkpoint was chosen on, so its figures are optimistic")
    reused = False
    if all(row.get("reused") for row in selection.table) and (html := existing_report(store, model, run,
                                                                                       selection.selected,
                                                                                       report_split)):
        reused = True
    else:
        notify(f"writing the synthesis report of {selection.selected.rsplit('/', 1)[-1]} on the {report_split} split")
        start = time.perf_counter()
        html = write_synthesis_report(store, model, run, split=report_split).html
        timings["report"] = time.perf_counter() - start
    return SelectStep(selection=selection, split=split, report_html=html, report_reused=reused,
                      report_split=report_split, notes=tuple(notes))


def existing_report(store: str, model: str, run: str, selected: str, split: str) -> str | None:
    """``report.html`` of the run when the stored report is of checkpoint ``selected`` on ``split``, else None."""
    import json

    from breastflow.store import layout
    from breastflow.store.fs import StoreLocation, read_bytes

    loc = StoreLocation.from_url(store)
    folder = layout.report_dir(model, run)
    try:
        data = json.loads(read_bytes(loc, f"{folder}/report.json"))
    except (FileNotFoundError, ValueError):
        return None
    same = str(data.get("selected", "")).rstrip("/").rsplit("/", 1)[-1] == selected.rstrip("/").rsplit("/", 1)[-1]
    if not same or data.get("split") != split or not loc.filesystem().exists(loc.fs_path(f"{folder}/report.html")):
        return None
    return loc.join(folder, "report.html")
