"""The synthesis report of a run's selected checkpoint (paper 003 Table 1-2, Fig 4, Fig 7/8): ``breastflow report``.

Reads ``checkpoints/<model>/<run>/selected.json`` (written by ``breastflow select``),
generates the report split (``test`` by default) with the selected checkpoint into
``synthetic/<model>-<run>-sel-<split>`` (reused when it already holds every study
from that checkpoint) and writes ``report.html``, ``report.md``, ``report.json``
and PNGs to ``checkpoints/<model>/<run>/report/`` through the store's filesystem
(local or ``s3://``). Sections (``docs/report.md``):

1. Table 1: every checkpoint's raw metrics (mean +- SD where per pair), SAMe, failed checkpoints, notes;
2. Fig 4a: SAMe and its scaled components per checkpoint; Fig 4b: the same slices across checkpoints;
3. Table 2 on the split: synthetic vs real post, real pre vs real post, subtraction images, lesion boxes
   (:mod:`breastflow.select.report_tables`);
4. contrast kinetics per lesion (Fig 7/8), curve-type agreement for multi-phase models only;
5. Table 2 per vendor; 6. the memorisation check (closest training slices).

Only study pseudonyms appear (image names ``<study>_z<slice>``, lesion ids).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from breastflow.data.image_sets import InputError
from breastflow.data.selection import StoreSelection, parse_selection
from breastflow.select import report_figures as figures
from breastflow.select import report_tables as tables
from breastflow.store import layout
from breastflow.metrics.cache import FeatureCache
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes, storage_options_from_env

REQUIRED_KEYS = ("selected", "selection", "table")
PRE = "pre"


class SynthesisReportError(ValueError):
    """The report cannot be written (no selection, a malformed selected.json); the message says what to do."""


class SynthesisReport(BaseModel):
    """What :func:`write_synthesis_report` wrote, plus the key figures as data.

    Attributes:
        html, markdown, json: URIs of ``report.html``, ``report.md``, ``report.json``.
        markdown_text: the Markdown (for a Prefect artifact; images as relative PNG names).
        figures: URIs of the PNGs.
        model, run, selected: the run and the chosen checkpoint; split: the split of Table 2.
        synthetic: the synthetic set of the split generated with the selected checkpoint; reused: it existed.
        targets: the series it holds (``post_1``; ``post_1..post_3`` for a joint model).
        table1: selected.json's rows; table1_baseline: real post vs real pre on the selection's slices
            (paper 003 Table 1's last row), ``None`` when it could not be computed; failed: failed checkpoints.
        table2: one row per comparison (``comparison, kind, target, dataset, n, values, config, ...``).
        lesion_boxes: MAE / MSE over the lesion boxes per comparison.
        kinetics: summary (curve agreement for multi-phase models, enhancement agreement otherwise).
        vendors: Table 2 values per vendor.
        memorisation: the memorisation check's values and closest pairs.
        notes: what the report decided or could not compute.
    """

    html: str
    markdown: str
    json_uri: str = Field(alias="json")
    markdown_text: str
    figures: list[str]
    model: str
    run: str
    selected: str
    split: str
    synthetic: str
    reused: bool
    targets: list[str]
    table1: list[dict]
    table1_baseline: dict | None
    failed: list[dict]
    table2: list[dict]
    lesion_boxes: list[dict]
    kinetics: dict
    vendors: list[dict]
    memorisation: dict
    notes: list[str]

    model_config = {"populate_by_name": True, "protected_namespaces": ()}


def read_selected(store: str, model: str, run: str) -> dict:
    """The run's ``selected.json`` as a dict.

    Raises:
        SynthesisReportError: no such file (run ``breastflow select`` first), not JSON, or required keys missing.
    """
    loc = StoreLocation.from_url(store)
    rel = layout.selected_file(model, run)
    try:
        data = json.loads(read_bytes(loc, rel))
    except FileNotFoundError as err:
        run_uri = loc.join(layout.checkpoint_dir(model, run))
        raise SynthesisReportError(f"no checkpoint selection at {loc.join(rel)}: run breastflow select RUN STORE "
                                   f"first (breastflow select {run} {store} --model {model}; run folder "
                                   f"{run_uri})") from err
    except json.JSONDecodeError as err:
        raise SynthesisReportError(f"{loc.join(rel)} is not valid JSON ({err}); re-run breastflow select") from err
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise SynthesisReportError(f"{loc.join(rel)} lacks {', '.join(missing)}; re-run breastflow select")
    return data


def synthetic_name(model: str, run: str, split: str) -> str:
    """``<model>-<run>-sel-<split>``, hash-shortened to a valid store name (64 characters) when too long."""
    name = f"{model}-{run}-sel-{split}"
    if len(name) > 64:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[:64 - len(split) - 17]}-{digest}-sel-{split}"
    return layout.check_name(name, "synthetic set name")


def _absolute(loc: StoreLocation, uri: str) -> str:
    return uri if "://" in uri or uri.startswith("/") else loc.join(uri)


def _relative(loc: StoreLocation, uri: str) -> str:
    return uri[len(loc.url) + 1:] if uri.startswith(loc.url + "/") else uri


def ensure_synthetic(loc: StoreLocation, checkpoint: str, split: str, name: str, device: str) -> tuple[list[str], bool]:
    """Generate ``split`` with ``checkpoint`` into ``synthetic/<name>``, unless that set already holds it.

    Reused when every study of the split with a pre-contrast series has a committed
    synthetic series whose provenance names this checkpoint.

    Returns:
        ``(targets, reused)``.
    """
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import generate_synthetic
    from breastflow.generate.synthetic import (
        SyntheticSetError,
        read_synthetic_commits,
        synthetic_location,
    )
    from breastflow.store.catalog import read_catalog
    from breastflow.store.zarr_io import series_attrs
    from breastflow.train.checkpoint import state_uri

    catalog = read_catalog(loc)
    studies = set(catalog[(catalog.split == split) & (catalog.series == PRE)].study)
    want = _relative(loc, state_uri(checkpoint))
    try:
        records = read_synthetic_commits(loc, name)
    except SyntheticSetError:
        records = []
    targets = sorted({r.series for r in records})
    sloc = synthetic_location(loc, name)
    covered = bool(records) and all({(s, t) for t in targets} <= {(r.study, r.series) for r in records}
                                    for s in studies)
    if covered and all(series_attrs(sloc, r.study, r.series).get("breastflow", {}).get("provenance", {})
                       .get("checkpoint") == want for r in records if r.study in studies):
        return targets, True
    result = generate_synthetic(GenerateConfig(checkpoint=checkpoint, store=loc.url, split=GenerateSplit(split),
                                               name=name, device=device))
    return list(result.series), False


def _annotated_only(loc: StoreLocation, selection: StoreSelection, notes: list[str]) -> StoreSelection:
    """``slices=lesion`` needs lesion boxes: keep annotated studies only (``annotated=true``), noting how many
    studies per split that leaves out, instead of failing on the first study without annotations."""
    from breastflow.data.slice_choice import SliceChoice
    from breastflow.store.catalog import read_catalog

    if selection.slices is not SliceChoice.LESION or selection.annotated_only:
        return selection
    catalog = read_catalog(loc)
    rows = catalog[(catalog.series == selection.series) & ~catalog.annotated.astype(bool)]
    if not rows.empty:
        counts = rows.groupby("split").study.nunique()
        notes.append("studies without lesion annotations are left out (lesion slices need boxes): "
                     + ", ".join(f"{n} in {split}" for split, n in counts.items()))
    return selection.model_copy(update={"annotated_only": True})


def _sample_grid(loc: StoreLocation, selection: StoreSelection, data: dict, samples: int, path: Path,
                 notes: list[str]) -> Path | None:
    """Fig 4b: ``samples`` lesion slices of the selection's split (middle lesion slice of evenly spaced studies)."""
    from breastflow.data.selection_loading import load_selection
    from breastflow.store.catalog import read_catalog

    catalog = read_catalog(loc)
    rows = catalog[(catalog.series == selection.series) & catalog.annotated.astype(bool)]
    if selection.splits is not None:
        rows = rows[rows.split.isin([s.value for s in selection.splits])]
    if selection.studies is not None:
        rows = rows[rows.study.isin(selection.studies)]
    studies = sorted(rows.study.unique())
    if not studies or samples < 1:
        notes.append("Fig 4b: no annotated study in the selection's split; no sample grid")
        return None
    # an annotated study can still have no lesion slice (a lesion-free mask): pick among the studies that do
    post = load_selection(selection.model_copy(update={"studies": tuple(studies), "synthetic": None}), "real")
    present = sorted(set(post.meta.study))
    if not present:
        notes.append("Fig 4b: no lesion slice in the selection's split; no sample grid")
        return None
    chosen = tuple(present[int(i)] for i in np.unique(np.linspace(0, len(present) - 1, min(samples, len(present)))
                                                      .round().astype(int)))
    base = selection.model_copy(update={"studies": chosen, "synthetic": None})
    post = load_selection(base, "real")
    study_of = post.meta.study.to_numpy()
    pick = [int(np.flatnonzero(study_of == s)[len(np.flatnonzero(study_of == s)) // 2]) for s in chosen]
    pre = load_selection(base.model_copy(update={"series": PRE}), "real pre-contrast")
    columns = ["real pre", f"real {selection.series}"]
    per_row: list[list] = [[pre.images[i], post.images[i]] for i in pick]
    for row in data["table"]:
        columns.append(f"ep{row.get('epoch', '?')}{' *' if row['checkpoint'] == data['selected'] else ''}")
        name = row.get("synthetic")
        try:
            fake = load_selection(base.model_copy(update={"synthetic": name}), "synthetic") if name else None
        except InputError as err:
            notes.append(f"Fig 4b: synthetic set {name!r} of {row['checkpoint']} is not readable ({err})")
            fake = None
        where = {} if fake is None else {n: k for k, n in enumerate(fake.names)}
        for r, i in enumerate(pick):
            k = where.get(post.names[i])
            per_row[r].append(None if k is None else fake.images[k])
    return figures.plot_sample_grid([(post.names[i], imgs) for i, imgs in zip(pick, per_row, strict=True)],
                                    columns, path)


def _memorisation(selection: StoreSelection, sets: tables.ComparisonSets, config, notes: list[str]) -> tuple[dict, list]:
    """Closest training slices to the synthetic slices (train = the store's train split, holdout = real split)."""
    from breastflow.data.selection_loading import load_selection
    from breastflow.evaluate.data_range import resolve_data_range
    from breastflow.evaluate.evaluators import EvaluationContext
    from breastflow.evaluate.pairing import pair_sets
    from breastflow.evaluate.privacy_check import privacy_check
    from breastflow.store.splits import Split

    train = load_selection(selection.model_copy(update={"splits": (Split.TRAIN,), "synthetic": None,
                                                        "series": sets.target}), "train")
    fake = pair_sets(sets.real_post, sets.synthetic, [])
    cfg = config.model_copy(update={"metrics": (), "by": ()})
    data_range = resolve_data_range(sets.real_post, cfg, True).value
    ctx = EvaluationContext(real=sets.real_post, fake=fake, config=cfg, data_range=data_range)
    try:
        check = privacy_check(train, sets.real_post, fake, cfg, data_range, ctx)
    except (InputError, OSError, RuntimeError) as err:
        if cfg.privacy_features == "pixels":
            raise
        notes.append(f"memorisation check: the {cfg.privacy_features} feature space failed ({err}); pixels only")
        cfg = cfg.model_copy(update={"privacy_features": "pixels"})
        check = privacy_check(train, sets.real_post, fake, cfg, data_range,
                              EvaluationContext(real=sets.real_post, fake=fake, config=cfg, data_range=data_range))
    return {"values": check.values(), "closest": check.closest_pairs(), "train": train.source,
            "holdout": sets.real_post.source, "quantile": cfg.privacy_quantile}, check


def write_synthesis_report(store: str, model: str, run: str, split: str = "test", device: str = "cpu",
                           samples: int = 4) -> SynthesisReport:
    """Write the synthesis report of the run's selected checkpoint (see the module docstring).

    Args:
        store: the store (local path or ``s3://``); model, run: the training run.
        split: split of Table 2, kinetics, vendors and the memorisation check.
        device: torch device for generation and network metrics.
        samples: rows of the Fig 4b sample grid.

    Raises:
        SynthesisReportError: no ``selected.json`` (run ``breastflow select`` first) or a malformed one.
        breastflow.data.image_sets.InputError: the split holds no lesion slices, sets that do not pair.
        breastflow.generate.run.GenerateError: the split cannot be generated.
    """
    from breastflow.select.report_render import render

    loc = StoreLocation.from_url(store)
    data = read_selected(store, model, run)
    notes: list[str] = list(data.get("notes") or [])
    selection = _annotated_only(loc, parse_selection(data["selection"]), notes)
    checkpoint = _absolute(loc, data["selected"])
    if selection.splits is None or split in [s.value for s in selection.splits]:
        notes.append(f"Table 2 is on the {split} split, which the checkpoint was selected on: its numbers are "
                     "optimistic (use the test split for an unbiased estimate)")
    name = synthetic_name(model, run, split)
    targets, reused = ensure_synthetic(loc, checkpoint, split, name, device)
    epoch = next((r.get("epoch") for r in data["table"] if r["checkpoint"] == data["selected"]), None)
    label = f"Syn ep{epoch}" if epoch is not None else "Syn"
    metrics = tables.table2_metrics([*(data.get("metrics") or []), *(data.get("extra_metrics") or [])], notes)
    table2, boxes, vendors = [], [], []
    memo: dict = {}
    with tempfile.TemporaryDirectory(prefix="breastflow-report-") as tmp:
        out = Path(tmp)
        pngs: list[tuple[str, Path]] = []
        scaled = [m for m in data.get("metrics") or [] if any(m in (r.get("scaled") or {}) for r in data["table"])]
        if data["table"]:
            pngs.append(("fig4a", figures.plot_same_bars(data["table"], scaled, data["selected"], out / "fig4a_same.png")))
        try:
            grid = _sample_grid(loc, selection, data, samples, out / "fig4b_samples.png", notes)
        except (InputError, ValueError, LookupError) as err:
            notes.append(f"Fig 4b: no sample grid ({err})")
            grid = None
        if grid is not None:
            pngs.append(("fig4b", grid))
        cache_root = loc.join(layout.EVAL_FEATURES)
        cache = FeatureCache(cache_root, storage_options_from_env(cache_root))
        baseline1 = tables.selection_baseline(selection, metrics, data.get("metric_config") or {}, device, notes,
                                              cache)
        first_sets, config = None, None
        for target in targets:
            sets = tables.load_sets(selection, split, target, name)
            config = config or tables.base_config(data.get("metric_config") or {}, metrics, device, sets)
            rows, results = tables.comparison_rows(sets, config, label, split, notes, cache)
            table2 += rows
            boxes += tables.lesion_box_rows(sets, loc, split)
            vendors += tables.vendor_rows(results, {r["kind"]: r["comparison"] for r in rows})
            first_sets = first_sets or sets
        studies = sorted(first_sets.real_post.meta.study.unique())
        kinetics_summary = _kinetics_section(loc, name, studies, targets, out, pngs, notes)
        try:
            memo, check = _memorisation(selection, first_sets, config, notes)
            pngs += [(path.stem, path) for path in check.plot(out)]
        except (InputError, ValueError, LookupError) as err:
            notes.append(f"memorisation check: not computed ({err})")
        report = {"model": model, "run": run, "selected": data["selected"], "split": split, "synthetic": name,
                  "reused": reused, "targets": targets, "table1": data["table"], "table1_baseline": baseline1,
                  "failed": data.get("failed") or [], "metrics": list(data.get("metrics") or []),
                  "extra_metrics": list(data.get("extra_metrics") or []), "criterion": data.get("criterion"),
                  "selection": data["selection"], "dataset_version": data.get("dataset_version"),
                  "table2": table2, "lesion_boxes": boxes, "kinetics": kinetics_summary, "vendors": vendors,
                  "memorisation": memo, "notes": notes}
        markdown, html = render(report, [(k, p.name) for k, p in pngs])
        rel = layout.report_dir(model, run)
        for _, path in pngs:
            atomic_write_bytes(loc, f"{rel}/{path.name}", path.read_bytes())
        payload = json.dumps(_clean(report), indent=2, allow_nan=False).encode()
        atomic_write_bytes(loc, f"{rel}/report.json", payload)
        atomic_write_bytes(loc, f"{rel}/report.md", markdown.encode())
        atomic_write_bytes(loc, f"{rel}/report.html", html.encode())
    return SynthesisReport(html=loc.join(rel, "report.html"), markdown=loc.join(rel, "report.md"),
                           json=loc.join(rel, "report.json"), markdown_text=markdown,
                           figures=[loc.join(rel, p.name) for _, p in pngs],
                           **{k: v for k, v in json.loads(payload).items()
                              if k in SynthesisReport.model_fields})


def _kinetics_section(loc: StoreLocation, name: str, studies: list[str], targets: list[str], out: Path,
                      pngs: list[tuple[str, Path]], notes: list[str]) -> dict:
    """Contrast kinetics of the split's lesions: summary dict, figures appended to ``pngs`` (``{}`` + a note if none)."""
    try:
        kinetics = tables.kinetics_analysis(loc, name, studies, targets)
    except ValueError as err:  # e.g. a non-positive early peak: the curve type is undefined
        notes.append(f"contrast kinetics: not measured ({err})")
        return {}
    if kinetics is None:
        notes.append("contrast kinetics: no lesion box in the split; nothing to measure")
        return {}
    pngs.append(("fig7", figures_kinetics(kinetics, out, "dataset")))
    pngs.append(("fig8", figures_kinetics(kinetics, out, "case")))
    if len(targets) == 1:
        pngs.append(("enhancement", figures.plot_enhancement(tables.initial_enhancement(kinetics),
                                                             out / "kinetics_enhancement.png")))
    return _kinetics_summary(kinetics, targets)


def figures_kinetics(result, out: Path, kind: str) -> Path:
    """Fig 7 (``dataset``) or Fig 8 (``case``) of :mod:`breastflow.metrics.kinetics`."""
    from breastflow.metrics.kinetics import plot_case_kinetics, plot_dataset_kinetics

    if kind == "dataset":
        return plot_dataset_kinetics(result, out / "fig7_kinetics.png")
    return plot_case_kinetics(result, out / "fig8_kinetics_cases.png")


def _kinetics_summary(result, targets: list[str]) -> dict:
    dataset = result.dataset.to_dict(orient="records")
    summary: dict = {"lesions": int(result.phases.case.nunique()), "phases": ["pre", *targets], "dataset": dataset,
                     "multi_phase": len(targets) > 1}
    if len(targets) > 1:
        summary.update(result.to_dict())
        summary["curves"] = result.curves.to_dict(orient="records")
    else:
        enh = tables.initial_enhancement(result)
        diff = enh.synthetic - enh.real
        corr = float(np.corrcoef(enh.real, enh.synthetic)[0, 1]) if len(enh) > 2 else float("nan")
        summary.update(enhancement=enh.to_dict(orient="records"), enhancement_mae=float(diff.abs().mean()),
                       enhancement_bias=float(diff.mean()), enhancement_correlation=corr,
                       order_agreement=float(result.order_agreement))
    return summary


def _clean(value):
    """JSON-ready copy: numpy scalars as Python numbers, NaN / infinity as ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
