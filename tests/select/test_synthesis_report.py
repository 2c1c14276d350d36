"""``write_synthesis_report`` on a tiny store: every section, Table 2 = an independent evaluate_sets, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import (
    METRICS,
    build_tiny_store,
    report_studies,
    selection_text,
    write_checkpoint,
    write_selected,
)

from breastflow.data.image_sets import ImageSet
from breastflow.data.selection_loading import load_selection
from breastflow.evaluate.config import EvaluationConfig
from breastflow.evaluate.sets import evaluate_sets
from breastflow.generate.config import GenerateConfig, GenerateSplit
from breastflow.generate.run import generate_synthetic
from breastflow.select.report import (
    SynthesisReportError,
    read_selected,
    synthetic_name,
    write_synthesis_report,
)
from breastflow.select.report_render import SECTIONS
from breastflow.select.same import same_score
from breastflow.store import layout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Store + 3 tiny random checkpoints, each with its val synthetic set, and a selected.json from real numbers."""
    import torch

    store = build_tiny_store(str(tmp_path_factory.mktemp("rep") / "store"), report_studies())
    run_dir = Path(store) / layout.checkpoint_dir("pix2pixhd", "r1")
    real = load_selection(selection_text(store), "real")
    config = EvaluationConfig(metrics=(*METRICS, "psnr"), paired=True, by=())
    rows = []
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)
        folder = write_checkpoint(run_dir / f"epoch_{epoch:06d}", store)
        name = f"eval-pix2pixhd-r1-e{epoch}"
        generate_synthetic(GenerateConfig(checkpoint=str(folder), store=store, split=GenerateSplit.VAL, name=name))
        fake = load_selection(selection_text(store) + f"&synthetic={name}", "fake")
        values = evaluate_sets(real, fake, config).values
        rows.append({"checkpoint": str(folder), "epoch": epoch, "synthetic": name,
                     **{k: values[k] for k in values if k.split("_sd")[0] in (*METRICS, "psnr")}})
    frame = pd.DataFrame(rows).set_index("checkpoint")
    result = same_score(frame, METRICS)
    for row in rows:
        row["same"] = float(result.same[row["checkpoint"]])
        row["scaled"] = {m: float(result.scaled.loc[row["checkpoint"], m]) for m in METRICS}
    selected = result.choice
    data = {"model": "pix2pixhd", "run": "r1", "run_uri": str(run_dir), "selected": selected, "criterion": "same",
            "metrics": METRICS, "extra_metrics": ["psnr", "not_a_metric"], "selection": selection_text(store),
            "dataset_version": "v", "metric_config": {"evaluation": config.model_dump(mode="json")}, "table": rows,
            "failed": [{"checkpoint": str(run_dir / "epoch_000004"), "error": "CheckpointError: corrupt state.pt"}],
            "notes": ["FID_Rad not computed: no RadImageNet weights configured"]}
    write_selected(store, "pix2pixhd", "r1", data)
    report = write_synthesis_report(store, "pix2pixhd", "r1", samples=2)
    return store, data, report


def test_report_files_hold_every_section_figure_and_the_failed_checkpoint(run):
    store, data, report = run
    folder = Path(store) / layout.report_dir("pix2pixhd", "r1")
    assert report.html == str(folder / "report.html") and Path(report.html).is_file()
    md = Path(report.markdown).read_text()
    html = Path(report.html).read_text()
    assert md == report.markdown_text
    for section in SECTIONS:
        assert f"## {section}" in md and f"<h2>{section}</h2>" in html
    names = {Path(f).name for f in report.figures}
    assert {"fig4a_same.png", "fig4b_samples.png", "fig7_kinetics.png", "fig8_kinetics_cases.png",
            "kinetics_enhancement.png", "privacy_pixels.png"} <= names
    for figure in report.figures:
        assert Path(figure).read_bytes()[:4] == b"\x89PNG"
        assert f"src='{Path(figure).name}'" in html  # relative links: opens from the folder
    assert "epoch_000004" in md and "corrupt state.pt" in html
    assert "FID_Rad not computed" in md
    assert "'not_a_metric' are not evaluation metrics" in md
    assert "| psnr |" in md.split("## Table 1")[1].split("## Fig 4a")[0]  # extra metric column, not ranked
    epoch = next(r["epoch"] for r in data["table"] if r["checkpoint"] == data["selected"])
    assert f"ep{epoch} (selected)" in md
    stored = json.loads((folder / "report.json").read_text())
    assert stored["table2"] == [json.loads(json.dumps(r)) for r in report.table2]


def test_table2_equals_an_independent_evaluation_and_has_the_baseline_rows(run):
    store, _, report = run
    assert report.synthetic == synthetic_name("pix2pixhd", "r1", "test") and report.targets == ["post_1"]
    test_sel = selection_text(store, "test") + "&annotated=true"
    real = load_selection(test_sel, "real")
    pre = load_selection(test_sel.replace("series=post_1", "series=pre"), "pre")
    fake = load_selection(test_sel + f"&synthetic={report.synthetic}", "fake")
    assert sorted(real.meta.study.unique()) == ["te-0", "te-1"]

    def sub(a: ImageSet, b: ImageSet, label: str) -> ImageSet:
        images = tuple(np.maximum(x.astype(np.float64) - y, 0.0) for x, y in zip(a.images, b.images, strict=True))
        return ImageSet(source=label, names=a.names, images=images, meta=a.meta)

    expected = {"synthetic": (real, fake), "baseline": (real, pre),
                "subtraction": (sub(real, pre, "rs"), sub(fake, pre, "fs"))}
    rows = {r["kind"]: r for r in report.table2}
    assert set(rows) == set(expected)
    assert "Real pre" in rows["baseline"]["comparison"]
    for kind, (a, b) in expected.items():
        config = EvaluationConfig.model_validate(rows[kind]["config"])
        assert set(METRICS) <= set(config.resolved_metrics()) and config.paired
        values = evaluate_sets(a, b, config).values
        for metric, value in rows[kind]["values"].items():
            assert value == pytest.approx(values[metric], rel=1e-12, abs=1e-15), (kind, metric)
        assert rows[kind]["n"] == len(a)
    assert rows["synthetic"]["values"]["mae"] != rows["baseline"]["values"]["mae"]
    # Table 1's baseline row: real pre vs real post on the selection's (val) slices
    base = report.table1_baseline
    val_real, val_pre = load_selection(selection_text(store), "r"), load_selection(
        selection_text(store).replace("series=post_1", "series=pre"), "p")
    values = evaluate_sets(val_real, val_pre, EvaluationConfig.model_validate(base["config"])).values
    assert base["dataset"] == "val" and base["n"] == len(val_real)
    assert base["values"]["mse"] == pytest.approx(values["mse"], rel=1e-12) and "psnr" in base["values"]
    assert "Real post_1 vs. Real pre (baseline)" in report.markdown_text.split("## Fig 4a")[0]
    assert "optimistic" not in report.markdown_text  # test split: not the selection's
    assert "studies without lesion annotations are left out (lesion slices need boxes): 1 in test" in report.notes


def test_a_metric_that_cannot_run_is_left_out_of_the_row_with_its_error(run, monkeypatch):
    from breastflow.data.selection import parse_selection
    from breastflow.select import report_tables

    store, _, report = run
    monkeypatch.delenv("BREASTFLOW_LPIPS_WEIGHTS", raising=False)
    sets = report_tables.load_sets(parse_selection(selection_text(store) + "&annotated=true"), "test", "post_1",
                                   report.synthetic)
    config = EvaluationConfig(metrics=("lpips", "mae"), paired=True, by=(), allow_clipping=True)
    notes: list[str] = []
    rows, _ = report_tables.comparison_rows(sets, config, "Syn", "test", notes)
    assert [set(r["values"]) for r in rows] == [{"mae", "mae_sd"}] * 3
    assert all(r["config"]["metrics"] == ["mae"] for r in rows)
    assert len(notes) == 3 and all("lpips left out (WeightsNotFoundError" in n for n in notes)
    assert rows[0]["values"]["mae"] == next(r for r in report.table2 if r["kind"] == "synthetic")["values"]["mae"]


def test_lesion_boxes_kinetics_vendors_and_memorisation(run):
    store, _, report = run
    boxes = {r["kind"]: r for r in report.lesion_boxes}
    assert set(boxes) == {"synthetic", "baseline", "subtraction"}
    # independent: baseline box MAE of study te-0 on its lesion slices (boxes cover z 2..3, rows 8..13, cols 9..14)
    sel = selection_text(store, "test") + "&study=te-0"
    real, pre = load_selection(sel, "r"), load_selection(sel.replace("series=post_1", "series=pre"), "p")
    diffs = [np.abs(pre.images[i][8:14, 9:15] - real.images[i][8:14, 9:15])
             for i, z in enumerate(real.meta.slice) if 2 <= z <= 3]
    sel1 = selection_text(store, "test") + "&study=te-1"
    real1, pre1 = load_selection(sel1, "r"), load_selection(sel1.replace("series=post_1", "series=pre"), "p")
    diffs1 = [np.abs(pre1.images[i][8:14, 9:15] - real1.images[i][8:14, 9:15])
              for i, z in enumerate(real1.meta.slice) if 2 <= z <= 3]
    per_study = [np.concatenate([d.ravel() for d in diffs]).mean(), np.concatenate([d.ravel() for d in diffs1]).mean()]
    assert boxes["baseline"]["mae"] == pytest.approx(np.mean(per_study), rel=1e-12)
    assert boxes["baseline"]["studies"] == 2 and boxes["baseline"]["voxels"] == 2 * 2 * 36
    k = report.kinetics
    assert k["lesions"] == 2 and k["phases"] == ["pre", "post_1"] and not k["multi_phase"]
    real_enh = {e["case"]: e["real"] for e in k["enhancement"]}
    assert real_enh["te-0/l1"] == pytest.approx(0.4 / 1.0, rel=0.05)  # the phantom's lesion gains 40 % at post_1
    assert "need a multi-phase (joint) model" in report.markdown_text
    assert report.vendors and {v["vendor"] for v in report.vendors} == {"phantom"}
    assert any(v["kind"] == "synthetic" and "mae" in v["values"] for v in report.vendors)
    memo = report.memorisation
    assert memo["values"]["privacy_n_train"] == len(load_selection(selection_text(store, "train"), "t"))
    assert memo["closest"] and all(c["train"].startswith("tr-") for c in memo["closest"])
    assert "patient" not in report.markdown_text and "pat-" not in report.markdown_text  # pseudonyms only


def test_missing_selection_names_the_file_and_the_command(tmp_path):
    with pytest.raises(SynthesisReportError, match=r"selected\.json.*run breastflow select RUN STORE first"):
        read_selected(str(tmp_path / "store"), "pix2pixhd", "nope")
    with pytest.raises(SynthesisReportError, match="run breastflow select"):
        write_synthesis_report(str(tmp_path / "store"), "pix2pixhd", "nope")


@pytest.fixture(scope="module")
def joint(run):
    """A joint model (targets post_1..post_3) of run j1 with one selected checkpoint and no validation set."""
    store = run[0]
    folder = write_checkpoint(Path(store) / layout.checkpoint_dir("pix2pixhd", "j1") / "epoch_000002", store,
                              targets=("post_1", "post_2", "post_3"))
    data = {"model": "pix2pixhd", "run": "j1", "selected": str(folder), "criterion": "same", "metrics": METRICS,
            "selection": selection_text(store),
            "table": [{"checkpoint": str(folder.parent / "epoch_000001"), "epoch": 1, "synthetic": "gone-set",
                       "mse": 2.0, "same": 1.0, "scaled": {"mse": 1.0}},
                      {"checkpoint": str(folder), "epoch": 2, "synthetic": None, "mse": 1.0, "same": 0.0,
                       "scaled": {"mse": 0.0}}],
            "failed": [], "notes": [], "metric_config": {"evaluation": {"privacy_features": "pixels"}}}
    write_selected(store, "pix2pixhd", "j1", data)
    return write_synthesis_report(store, "pix2pixhd", "j1", samples=1)


def test_joint_model_gets_every_phase_and_curve_type_agreement(joint):
    assert joint.targets == ["post_1", "post_2", "post_3"]
    assert [(r["target"], r["kind"]) for r in joint.table2] == [
        (t, k) for t in joint.targets for k in ("synthetic", "baseline", "subtraction")]
    k = joint.kinetics
    assert k["multi_phase"] and k["phases"] == ["pre", "post_1", "post_2", "post_3"] and k["lesions"] == 2
    curves = pd.DataFrame(k["curves"])
    assert set(curves.real) == {"persistent"}  # the phantom's lesion gains 40 % more every phase
    assert k["kinetics_curve_accuracy"] == pytest.approx(float((curves.real == curves.synthetic).mean()))
    assert "curve-type accuracy" in joint.markdown_text and "need a multi-phase" not in joint.markdown_text
    assert "Not available" not in joint.markdown_text.split("## Fig 4b")[1].split("##")[0]  # grid: real columns
    assert "kinetics_enhancement.png" not in " ".join(joint.figures)
    assert {c["space"] for c in joint.memorisation["closest"]} == {"pixels"}  # the configured feature space
    assert any("synthetic set 'gone-set'" in n and "not readable" in n for n in joint.notes)  # grid: n/a, said so


def test_cli_prints_the_report_as_json_and_names_a_missing_selection(run, joint):
    from click.testing import CliRunner

    from breastflow.cli.report import report

    store = run[0]
    result = CliRunner().invoke(report, [store, "pix2pixhd", "j1", "--samples", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["html"].endswith("checkpoints/pix2pixhd/j1/report/report.html")
    assert data["reused"] and not joint.reused  # the second run reuses the test set the first one generated
    assert [r["values"] for r in data["table2"]] == [r["values"] for r in joint.table2]
    assert [r["kind"] for r in data["table2"]] == ["synthetic", "baseline", "subtraction"] * 3
    missing = CliRunner().invoke(report, [store, "pix2pixhd", "none"])
    assert missing.exit_code != 0 and "run breastflow select RUN STORE first" in missing.output
