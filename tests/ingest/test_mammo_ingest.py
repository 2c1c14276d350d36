"""Mammography end to end: four views per study land as (1, rows, cols) native-dtype arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from ingest_helpers import assert_no_phi_in

from breastflow.deid.pseudonym import load_key, pseudonymise
from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus
from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import Modality, PhantomConfig
from breastflow.store.annotation_commit import read_annotation_commit
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs

pytestmark = pytest.mark.integration

VIEWS = {"mg_l_cc": ("CC", "L"), "mg_l_mlo": ("MLO", "L"), "mg_r_cc": ("CC", "R"), "mg_r_mlo": ("MLO", "R")}


@pytest.fixture(scope="module")
def mammo_cohort(tmp_path_factory) -> Path:
    """Three tiny exams: GE, Hologic and Siemens (MONOCHROME1) styles; the first has a lesion."""
    root = tmp_path_factory.mktemp("mammo") / "cohort"
    write_cohort(root, PhantomConfig(studies=3, seed=3, modality=Modality.MAMMO))
    return root


def _phi(root: Path) -> list[str]:
    phi = json.loads((root / "phi.json").read_text())
    cohort = pd.read_csv(root / "cohort.csv", dtype=str)
    values = {v for study in phi.values() for v in study["phi_values"]} | set(cohort.study_instance_uid)
    return sorted(v for v in values if len(v) >= 4)


def test_mammography_views_land_with_view_laterality_and_photometric(tmp_path, mammo_cohort, dask_client):
    store = tmp_path / "store"
    report = run_ingest(str(mammo_cohort / "dicom"), str(store), client=dask_client)
    assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
    loc = StoreLocation.from_url(str(store))
    catalog = read_catalog(loc)
    cohort = pd.read_csv(mammo_cohort / "cohort.csv", dtype={"study_instance_uid": str})
    assert len(catalog) == 4 * len(cohort)
    key = load_key()
    for _, row in cohort.iterrows():
        study = pseudonymise(row["study_instance_uid"], "study", key)
        rows = catalog[catalog.study == study].set_index("series")
        assert sorted(rows.index) == sorted(VIEWS)
        for name, (view, side) in VIEWS.items():
            assert (rows.loc[name, "view"], rows.loc[name, "laterality"]) == (view, side)
            assert rows.loc[name, "modality"] == "MG" and pd.isna(rows.loc[name, "phase_index"])
            attrs = series_attrs(loc, study, name)["breastflow"]
            source = next(p for p in (mammo_cohort / row["dicom_dir"]).rglob("*.dcm")
                          if _view_of(p) == (view, side))
            ds = pydicom.dcmread(source)
            stored = open_series_array(loc, study, name)[:]
            # (1, rows, cols), native dtype, stored values as written (MONOCHROME1 is not inverted)
            assert stored.shape == (1, ds.Rows, ds.Columns) and stored.dtype == ds.pixel_array.dtype
            np.testing.assert_array_equal(stored[0], ds.pixel_array)
            assert attrs["dicom"]["photometric"] == ds.PhotometricInterpretation
            assert attrs["dicom"]["bits_stored"] == ds.BitsStored
            assert attrs["geometry"] == "projection"
            assert (attrs["view"], attrs["laterality"]) == (view, side)
    siemens = cohort[cohort.vendor == "siemens"].iloc[0]
    study = pseudonymise(siemens["study_instance_uid"], "study", key)
    assert series_attrs(loc, study, "mg_l_cc")["breastflow"]["dicom"]["photometric"] == "MONOCHROME1"
    assert_no_phi_in({str(p): p.read_bytes() for p in store.rglob("*") if p.is_file()}, _phi(mammo_cohort))


def _view_of(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.ViewPosition), str(ds.ImageLaterality)


def test_mammography_lesion_boxes_are_stored_per_view(tmp_path, mammo_cohort, dask_client):
    store = tmp_path / "store"
    report = run_ingest(str(mammo_cohort / "dicom"), str(store), client=dask_client)
    assert len([o for o in report.new if o.series == "annotations"]) == 3
    loc = StoreLocation.from_url(str(store))
    cohort = pd.read_csv(mammo_cohort / "cohort.csv", dtype={"study_instance_uid": str})
    lesions = pd.read_csv(mammo_cohort / "lesions.csv")
    key = load_key()
    for _, row in cohort.iterrows():
        record = read_annotation_commit(loc, pseudonymise(row["study_instance_uid"], "study", key))
        expected = lesions[lesions.study_id == row["study_id"]]
        assert record is not None and record.n_lesions == int(row["n_lesions"]) and not record.has_mask
        got = sorted((b.series, b.start_row, b.end_row, b.start_column, b.end_column, b.kind) for b in record.boxes)
        want = sorted((f"mg_{v[0].lower()}_{v[1:].lower()}", r.start_row, r.end_row, r.start_column, r.end_column,
                       r.lesion_kind) for r, v in zip(expected.itertuples(), expected["view"], strict=True))
        assert got == want
        assert all(b.start_slice is None for b in record.boxes)
    catalog = read_catalog(loc)
    assert catalog.annotated.all() and not catalog.has_mask.any()
    assert sorted(catalog.drop_duplicates("study").n_lesions) == sorted(cohort.n_lesions.astype(int))
