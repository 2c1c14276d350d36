"""Lesion annotations: phantom layout and Duke-style tables, grid checks, quarantine, incremental runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import zarr
from click.testing import CliRunner
from ingest_helpers import assert_no_phi_in

from breastflow.cli import main
from breastflow.deid.pseudonym import load_key, pseudonymise
from breastflow.ingest.annotations import AnnotationOptions, detect_annotation_source
from breastflow.ingest.mask_grid import MaskGridMismatch, StoredGrid, mask_to_grid
from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus, Outcome
from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import PhantomConfig
from breastflow.store.annotation_commit import read_annotation_commit
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array

pytestmark = pytest.mark.integration

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
BOX_COLUMNS = ["start_row", "end_row", "start_column", "end_column", "start_slice", "end_slice"]


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> Path:
    """Two tiny studies, both with lesions (Siemens numbers slices I->S, GE S->I)."""
    root = tmp_path_factory.mktemp("annotated") / "cohort"
    write_cohort(root, PhantomConfig(studies=2, seed=9, t2_fraction=0.0))  # seed 9: both studies have lesions
    return root


@pytest.fixture
def cohort_copy(tmp_path, phantom) -> Path:
    target = tmp_path / "cohort"
    shutil.copytree(phantom, target)
    return target


def _study(row: pd.Series) -> str:
    return pseudonymise(str(row["study_instance_uid"]), "study", load_key())


def _reference_mask(path: Path) -> np.ndarray:
    """The phantom's documented reading: NIfTI (column, row, slice) -> (slice, row, column)."""
    return np.asarray(nib.load(str(path)).dataobj).transpose(2, 1, 0)


def _store_phi(root: Path) -> list[str]:
    phi = json.loads((root / "phi.json").read_text())
    cohort = pd.read_csv(root / "cohort.csv", dtype=str)
    values = {v for study in phi.values() for v in study["phi_values"]} | set(cohort.study_instance_uid)
    return sorted(v for v in values if len(v) >= 4)


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "reports" not in p.parts and "catalog" not in p.parts}


def test_phantom_masks_and_boxes_land_on_the_pre_contrast_grid(tmp_path, cohort_copy, dask_client):
    store = tmp_path / "store"
    report = run_ingest(str(cohort_copy / "dicom"), str(store), client=dask_client)  # auto-detected
    assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
    notes = [o for o in report.new if o.series == "annotations"]
    assert len(notes) == 2
    loc = StoreLocation.from_url(str(store))
    catalog = read_catalog(loc)
    cohort = pd.read_csv(cohort_copy / "cohort.csv", dtype={"study_instance_uid": str})
    lesions = pd.read_csv(cohort_copy / "lesions.csv")
    for _, row in cohort.iterrows():
        study = _study(row)
        stored = zarr.open_array(str(store / "studies" / study / "masks" / "lesions" / "0"), mode="r")[:]
        reference = _reference_mask(cohort_copy / row["mask_path"])
        assert stored.dtype == np.uint8 and stored.shape == open_series_array(loc, study, "pre").shape
        np.testing.assert_array_equal(stored, reference)
        # boxes in the study group's attributes equal lesions.csv (0-based, inclusive)
        attrs = dict(zarr.open_group(str(store / "studies" / study), mode="r").attrs)["annotations"]
        expected = lesions[lesions.study_id == row["study_id"]].sort_values("lesion_id")
        assert [[b[c] for c in BOX_COLUMNS] for b in attrs["boxes"]] == expected[BOX_COLUMNS].values.tolist()
        assert [b["lesion_class"] for b in attrs["boxes"]] == expected["class"].tolist()
        assert [b["curve_type"] for b in attrs["boxes"]] == expected["curve_type"].tolist()
        rows = catalog[catalog.study == study]
        assert rows.annotated.all() and rows.has_mask.all()
        assert set(rows.n_lesions) == {int(row["n_lesions"])}
        # orientation: the mask sits on what enhances in the stored post-contrast minus pre-contrast
        enhancement = (open_series_array(loc, study, "post_1")[:].astype(np.float64)
                       - open_series_array(loc, study, "pre")[:].astype(np.float64))
        inside = enhancement[stored > 0].mean()
        assert inside > 3 * enhancement[reference == 0].mean()
        for axis in range(3):  # an axis flip (an LPS/RAS or slice-order slip) lands off the lesions
            moved = (np.flip(stored, axis) > 0) & (stored == 0)
            if moved.any():  # (a flip that maps the mask onto itself cannot be told apart)
                assert inside > 2 * enhancement[moved].mean(), axis
    assert_no_phi_in({str(p): p.read_bytes() for p in store.rglob("*") if p.is_file()}, _store_phi(cohort_copy))
    before = _files(store)
    again = run_ingest(str(cohort_copy / "dicom"), str(store), client=dask_client)
    assert len(again.new) == 0 and len(again.skipped) == len(report.new)
    assert _files(store) == before


def _grid(shape=(5, 6, 7), spacing=(2.0, 0.8, 0.9), origin=(-3.0, 4.0, 10.0)) -> StoredGrid:
    return StoredGrid(shape=shape, spacing_mm=spacing, origin_mm=origin, direction=tuple(np.eye(3).ravel()))


def _canonical(grid: StoredGrid, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dcm2niix/nibabel way: data (x, y, z), RAS affine."""
    return labels.transpose(2, 1, 0), LPS_TO_RAS @ grid.affine_lps()


def _reindexed(data: np.ndarray, affine: np.ndarray, perm: tuple[int, int, int], flips: tuple[bool, ...]):
    """The same image with axes permuted/flipped (nibabel-independent algebra on the affine)."""
    out, new = np.transpose(data, perm), np.eye(4)
    new[:, :3] = affine[:, list(perm)]
    new[:, 3] = affine[:, 3]
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis)
            new[:, 3] = new[:, 3] + new[:, axis] * (out.shape[axis] - 1)
            new[:, axis] = -new[:, axis]
    return out, new


EQUIVALENT = [
    ("ras-canonical", (0, 1, 2), (False, False, False)),
    ("lps-like flips of x and y", (0, 1, 2), (True, True, False)),
    ("slices reversed", (0, 1, 2), (False, False, True)),
    ("axis order z, y, x", (2, 1, 0), (False, False, False)),
    ("axis order y, z, x with flips", (1, 2, 0), (True, False, True)),
]


@pytest.mark.parametrize(("name", "perm", "flips"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_equivalent_nifti_layouts_give_the_same_mask(name, perm, flips):
    grid = _grid()
    labels = np.random.default_rng(1).integers(0, 3, size=grid.shape, dtype=np.uint8)
    data, affine = _reindexed(*_canonical(grid, labels), perm, flips)
    np.testing.assert_array_equal(mask_to_grid(data, affine, grid), labels)


def _shifted(affine: np.ndarray) -> np.ndarray:
    out = affine.copy()
    out[:3, 3] += out[:3, 2]  # one slice up
    return out


def _scaled(affine: np.ndarray) -> np.ndarray:
    out = affine.copy()
    out[:3, 2] *= 1.5
    return out


def _rotated(affine: np.ndarray) -> np.ndarray:
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    return rotation @ affine


MISMATCHES = [
    ("shifted one slice", _shifted, "off the pre-contrast grid by up to 1.00 voxels"),
    ("other slice spacing", _scaled, "off the pre-contrast grid"),
    ("oblique", _rotated, "off the pre-contrast grid"),
]


@pytest.mark.parametrize(("name", "change", "message"), MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_masks_off_the_grid_are_refused_with_the_difference(name, change, message):
    grid = _grid()
    data, affine = _canonical(grid, np.zeros(grid.shape, np.uint8))
    with pytest.raises(MaskGridMismatch, match=message) as info:
        mask_to_grid(data, change(affine), grid)
    assert "pre-contrast grid voxel size" in str(info.value)


def test_mask_of_another_shape_is_refused():
    grid = _grid()
    data, affine = _canonical(grid, np.zeros(grid.shape, np.uint8))
    with pytest.raises(MaskGridMismatch, match="shape differs"):
        mask_to_grid(data[:, :, :-1], affine, grid)


def _write_mask(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def test_bad_annotation_is_quarantined_while_images_land_and_a_fix_is_incremental(tmp_path, phantom, cohort_copy,
                                                                                 dask_client):
    cohort = pd.read_csv(cohort_copy / "cohort.csv", dtype={"study_instance_uid": str})
    first, second = (cohort.iloc[i] for i in (0, 1))
    mask_file = cohort_copy / first["mask_path"]
    original = mask_file.read_bytes()
    image = nib.load(str(mask_file))
    _write_mask(mask_file, np.asarray(image.dataobj), _shifted(image.affine))
    lesions = pd.read_csv(cohort_copy / "lesions.csv")
    lesions.loc[lesions.study_id == second["study_id"], "end_slice"] = 999
    lesions.to_csv(cohort_copy / "lesions.csv", index=False)
    store = tmp_path / "store"
    report = run_ingest(str(cohort_copy / "dicom"), str(store), client=dask_client)
    reasons = {o.reason: o for o in report.quarantined}
    assert set(reasons) == {"annotation-grid-mismatch", "annotation-box-outside"}, report.to_operator_dict()
    assert "off the pre-contrast grid" in reasons["annotation-grid-mismatch"].message
    assert "999" in reasons["annotation-box-outside"].message
    assert report.exit_status() is ExitStatus.PARTIAL
    images = [o for o in report.new if o.series != "annotations"]
    assert len(images) == int(cohort.n_post_phases.astype(int).sum()) + 2  # every series landed
    loc = StoreLocation.from_url(str(store))
    catalog = read_catalog(loc)
    assert not catalog.annotated.any() and catalog.n_lesions.isna().all()
    assert not (store / "studies" / _study(first) / "masks").exists()
    stored_report = next((store / "reports" / "ingest").iterdir()).read_text()
    assert "annotation-grid-mismatch" in stored_report and str(cohort_copy) not in stored_report
    # fix both: only the annotations are written, the images are skipped
    mask_file.write_bytes(original)
    shutil.copy(phantom / "lesions.csv", cohort_copy / "lesions.csv")
    fixed = run_ingest(str(cohort_copy / "dicom"), str(store), client=dask_client)
    assert fixed.exit_status() is ExitStatus.SUCCESS
    assert sorted(o.series for o in fixed.new) == ["annotations", "annotations"]
    assert len(fixed.skipped) == len(images)
    assert read_annotation_commit(loc, _study(first)).has_mask


def _duke_table(cohort_root: Path, index_base: int) -> pd.DataFrame:
    """lesions.csv as a Duke table keyed by each study's PatientID (read with pydicom)."""
    cohort = pd.read_csv(cohort_root / "cohort.csv", dtype=str)
    lesions = pd.read_csv(cohort_root / "lesions.csv")
    patient = {}
    for _, row in cohort.iterrows():
        first = next((cohort_root / row["dicom_dir"]).rglob("*.dcm"))
        patient[row["study_id"]] = str(pydicom.dcmread(first, stop_before_pixels=True).PatientID)
    table = pd.DataFrame({"Patient ID": lesions.study_id.map(patient)})
    for column in BOX_COLUMNS:
        table[column.replace("_", " ").title()] = lesions[column] + index_base
    extra = {"Patient ID": "NOT-IN-THIS-BATCH", **{c.replace("_", " ").title(): 1 for c in BOX_COLUMNS}}
    return pd.concat([table, pd.DataFrame([extra])], ignore_index=True)


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_duke_table_is_matched_by_patient_id_which_never_reaches_the_store(tmp_path, phantom, dask_client,
                                                                           suffix):
    landing = tmp_path / "landing"
    shutil.copytree(phantom / "dicom", landing)
    table = _duke_table(phantom, index_base=1)
    path = tmp_path / f"Annotation_Boxes.{suffix}"
    table.to_csv(path, index=False) if suffix == "csv" else table.to_excel(path, index=False)
    store = tmp_path / "store"
    report = run_ingest(str(landing), str(store), client=dask_client,
                        annotations=AnnotationOptions(path=str(path), index_base=1))
    assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
    loc = StoreLocation.from_url(str(store))
    lesions = pd.read_csv(phantom / "lesions.csv")
    cohort = pd.read_csv(phantom / "cohort.csv", dtype={"study_instance_uid": str})
    for _, row in cohort.iterrows():
        record = read_annotation_commit(loc, _study(row))
        assert record is not None and not record.has_mask and record.source_format == "duke-table"
        expected = lesions[lesions.study_id == row["study_id"]][BOX_COLUMNS].values.tolist()
        assert [[getattr(b, c) for c in BOX_COLUMNS] for b in record.boxes] == expected
    ids = [v for v in table["Patient ID"] if v != "NOT-IN-THIS-BATCH"]
    objects = {str(p): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert_no_phi_in(objects, ids + [str(path)])
    assert set(read_catalog(loc).n_lesions) == set(cohort.n_lesions.astype(int))


def test_duke_box_outside_the_volume_is_quarantined(tmp_path, phantom, dask_client):
    landing = tmp_path / "landing"
    shutil.copytree(phantom / "dicom", landing)
    table = _duke_table(phantom, index_base=0)
    table.loc[0, "End Row"] = 4096
    path = tmp_path / "boxes.csv"
    table.to_csv(path, index=False)
    report = run_ingest(str(landing), str(tmp_path / "store"), client=dask_client,
                        annotations=AnnotationOptions(path=str(path)))
    assert report.reason_counts() == {"annotation-box-outside": 1}
    entry = report.quarantined[0]
    assert entry.series == "annotations" and "4096" in entry.message
    assert "line(s) 2" in entry.where and table.loc[0, "Patient ID"] not in entry.message


def test_auto_detection_rule_and_switch(tmp_path, phantom):
    assert detect_annotation_source(str(phantom / "dicom")) == str(phantom)
    assert detect_annotation_source(str(phantom / "dicom") + "/") == str(phantom)
    landing = tmp_path / "dicom"
    landing.mkdir()
    assert detect_annotation_source(str(landing)) is None  # no cohort.csv beside it
    assert detect_annotation_source(str(phantom)) is None  # SOURCE must be the dicom/ folder


def test_cli_annotation_options(tmp_path, phantom):
    runner = CliRunner()
    store = str(tmp_path / "store")
    off = runner.invoke(main, ["ingest", str(phantom / "dicom"), store, "--threads", "--quiet", "--no-annotations"])
    assert off.exit_code == 0, off.output
    assert not read_catalog(StoreLocation.from_url(store)).annotated.any()
    on = runner.invoke(main, ["ingest", str(phantom / "dicom"), store, "--threads", "--quiet",
                              "--annotations", str(phantom)])
    assert on.exit_code == 0, on.output
    assert "new 0, skipped " in on.output and "annotations new 2, skipped 0" in on.output
    both = runner.invoke(main, ["ingest", str(phantom / "dicom"), store, "--annotations", str(phantom),
                                "--no-annotations"])
    assert both.exit_code == 2 and "exclude each other" in both.output
    missing = runner.invoke(main, ["ingest", str(phantom / "dicom"), store, "--threads", "--quiet",
                                   "--annotations", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "do not exist" in missing.output


def test_outcome_entries_name_the_annotation(tmp_path, cohort_copy, dask_client):
    (cohort_copy / "truth" / "PH0000_lesion_mask.nii.gz").write_bytes(b"not a nifti")
    report = run_ingest(str(cohort_copy / "dicom"), str(tmp_path / "store"), client=dask_client)
    bad = [o for o in report.outcomes if o.outcome is Outcome.QUARANTINED]
    assert [(o.series, o.reason) for o in bad] == [("annotations", "annotation-unreadable")]
    assert "not a readable NIfTI" in bad[0].message or "cannot read" in bad[0].message
