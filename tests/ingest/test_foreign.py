"""Foreign input end to end: a phantom study mixed with pydicom's and pydicom-data's files and garbage.

Every file must either land in a series whose voxels equal pydicom's own decode,
or be quarantined/ignored with a reason; the phantom study lands whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from ingest_helpers import assert_no_phi_in, read_series_with_pydicom, write_cohort
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastflow.deid.pseudonym import load_key, pseudonymise
from breastflow.ingest.pipeline import run_ingest
from breastflow.ingest.report import ExitStatus, Outcome
from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.dicom_io import make_uid
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array, series_attrs

pytestmark = pytest.mark.integration

# untouched bundled files: (name, what it exercises)
RAW = [
    ("MR_small.dcm", "Toshiba MR, explicit LE (derived image: no DCE role)"),
    ("MR_small_implicit.dcm", "implicit LE copy of the same instance"),
    ("MR_small_bigendian.dcm", "big endian copy"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 copy"),
    ("MR_small_RLE.dcm", "RLE copy"),
    ("MR_truncated.dcm", "truncated pixel data"),
    ("MR2_UNCR.dcm", "Philips MR, single series"),
    ("MR-SIEMENS-DICOM-WithOverlays.dcm", "Siemens MPR with overlays"),
    ("CT_small.dcm", "GE CT: not part of the protocol"),
    ("693_J2KR.dcm", "CT JPEG 2000"),
    ("eCT_Supplemental.dcm", "enhanced CT"),
    ("RG1_UNCI.dcm", "Philips CR"),
    ("US1_UNCI.dcm", "ultrasound"),
    ("emri_small.dcm", "enhanced MR without functional-group geometry"),
    ("emri_small_RLE.dcm", "its RLE copy"),
    ("SC_rgb_rle.dcm", "secondary capture RGB"),
    ("rtdose.dcm", "RT dose"),
    ("liver.dcm", "segmentation"),
    ("reportsi.dcm", "structured report"),
    ("waveform_ecg.dcm", "waveform"),
    ("no_meta.dcm", "no file meta"),
    ("zipMR.gz", "gzip archive"),
]
# relabelled into DCE studies (pixel data and transfer syntax untouched): (file, role)
TOSHIBA = [("MR_small.dcm", "pre"), ("MR_small_implicit.dcm", "post"), ("MR_small_bigendian.dcm", "post"),
           ("MR_small_jp2klossless.dcm", "post"), ("MR_small_jpeg_ls_lossless.dcm", "post"),
           ("MR_small_RLE.dcm", "post")]
PHILIPS = [("MR2_UNCR.dcm", "pre"), ("MR2_J2KR.dcm", "post")]
SIEMENS = [("MR-SIEMENS-DICOM-WithOverlays.dcm", "pre")]
FOREIGN_PATIENT = "FOREIGN-PATIENT-778812"


def _relabel(ds: Dataset, study: str, index: int, role: str) -> Dataset:
    """Give a bundled file its own UIDs and DCE timing; pixels and transfer syntax stay as they are."""
    ds.StudyInstanceUID = make_uid("foreign-study", study)
    ds.SeriesInstanceUID = make_uid("foreign-series", study, index)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = make_uid("foreign-sop", study, index)
    ds.PatientID = FOREIGN_PATIENT
    ds.SeriesNumber = 10 + index
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.BodyPartExamined = "BREAST"  # relabelled as breast DCE (the Siemens file says ABDOMEN, emri_small HEAD)
    ds.SeriesDescription = "ax dyn pre" if role == "pre" else f"ax dyn post {index}"
    ds.EchoTime, ds.RepetitionTime = 2.0, 5.0
    ds.AcquisitionDateTime = f"20200102{10 + index:02d}3000"
    if role == "post":
        ds.ContrastBolusAgent = "GADOLINIUM"
    elif "ContrastBolusAgent" in ds:
        del ds.ContrastBolusAgent
    return ds


def _write_relabelled(folder: Path, study: str, members: list[tuple[str, str]]) -> dict[str, Path]:
    folder.mkdir(parents=True)
    written = {}
    for index, (name, role) in enumerate(members):
        ds = _relabel(pydicom.dcmread(get_testdata_file(name)), study, index, role)
        path = folder / f"{index:02d}"
        ds.save_as(path)
        written[ds.SeriesInstanceUID] = path
    return written


def _enhanced_without_positions(folder: Path) -> Path:
    """emri_small as a DCE pre: shared orientation and pixel measures, but no per-frame positions."""
    ds = _relabel(pydicom.dcmread(get_testdata_file("emri_small.dcm")), "enhanced", 0, "pre")
    del ds.EchoTime, ds.RepetitionTime  # not top-level attributes of enhanced MR
    orientation, measures, shared = Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [0.9, 0.9], 1.2
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    folder.mkdir(parents=True)
    ds.save_as(folder / "frames")
    return folder / "frames"


def _reference(path: Path) -> np.ndarray:
    """pydicom's own decode of a one-slice file, as ``(1, Y, X)`` (integer rescale applied like the store)."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    if (slope, intercept) != (1.0, 0.0) and slope.is_integer() and intercept.is_integer():
        pixels = pixels.astype(np.int64) * int(slope) + int(intercept)
    return pixels[None]


@pytest.fixture
def landing(tmp_path) -> tuple[Path, dict, list[str]]:
    root = tmp_path / "landing"
    cohort = write_cohort(tmp_path / "phantom", [0], [TransferSyntax.JPEGLS_LOSSLESS], seed=11)
    shutil.copytree(cohort.dicom, root)
    for name, _ in RAW:
        (root / "raw").mkdir(parents=True, exist_ok=True)
        shutil.copy(get_testdata_file(name), root / "raw" / name)
    garbage = root / "garbage"
    garbage.mkdir()
    (garbage / "notes.txt").write_text("scanner export log\n")
    (garbage / "empty").write_bytes(b"")
    (garbage / "noise.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    (garbage / "fake.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 300)
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (garbage / "cut.dcm").write_bytes(data[: len(data) // 2])
    landed = {}
    landed.update(_write_relabelled(root / "toshiba", "toshiba", TOSHIBA))
    landed.update(_write_relabelled(root / "philips", "philips", PHILIPS))
    landed.update(_write_relabelled(root / "siemens", "siemens", SIEMENS))
    _enhanced_without_positions(root / "enhanced")
    return root, {"cohort": cohort, "landed": landed}, cohort.phi_values


def test_foreign_files_land_voxel_exact_or_are_accounted_for(tmp_path, landing, dask_client):
    root, made, phi = landing
    store = tmp_path / "store"
    report = run_ingest(str(root), str(store), client=dask_client)
    assert report.exit_status() is ExitStatus.PARTIAL
    key = load_key()
    loc = StoreLocation.from_url(str(store))
    catalog = read_catalog(loc)
    # the phantom study landed whole, voxel for voxel
    row = made["cohort"].studies[0]
    study = pseudonymise(row["study_instance_uid"], "study", key)
    rows = catalog[catalog.study == study]
    assert len(rows) == 1 + int(row["n_post_phases"])
    for name in rows.series:
        number = series_attrs(loc, study, name)["breastflow"]["dicom"]["series_number"]
        np.testing.assert_array_equal(open_series_array(loc, study, name)[:],
                                      read_series_with_pydicom(root / row["study_id"] / str(number)))
    # relabelled foreign series (6 transfer syntaxes, 3 vendors) landed, equal to pydicom's decode
    by_source = {r.source_series: r for r in catalog.itertuples()}
    for series_uid, path in made["landed"].items():
        entry = by_source[pseudonymise(series_uid, "series", key)]
        stored = open_series_array(loc, entry.study, entry.series)[:]
        reference = _reference(path)
        assert stored.dtype.kind in "iu" and stored.shape == reference.shape
        np.testing.assert_array_equal(stored.astype(np.int64), reference.astype(np.int64), err_msg=str(path))
    toshiba = catalog[catalog.vendor == "TOSHIBA_MEC"]
    assert sorted(toshiba.series) == ["post_1", "post_2", "post_3", "post_4", "post_5", "pre"]
    assert len(set(toshiba.transfer_syntax)) == 6
    philips = catalog[catalog.vendor == "Philips"].set_index("series")
    assert list(philips.index) == ["post_1", "pre"]
    slope = float(pydicom.dcmread(get_testdata_file("MR2_UNCR.dcm"), stop_before_pixels=True).RescaleSlope)
    assert not slope.is_integer()  # non-integer rescale: stored values kept, the pair recorded
    assert series_attrs(loc, philips.study.iloc[0], "pre")["breastflow"]["rescale_slope"] == pytest.approx(slope)
    siemens = catalog[catalog.study == pseudonymise(make_uid("foreign-study", "siemens"), "study", key)]
    assert list(siemens.series) == ["pre"] and list(siemens.vendor) == ["SIEMENS"]
    # the enhanced MR without per-frame positions is quarantined with a clear reason
    enhanced = [o for o in report.quarantined if "enhanced" in o.where or "PlanePositionSequence" in o.message]
    assert {o.reason for o in enhanced} >= {"no-frame-positions"}
    clear = next(o for o in enhanced if o.reason == "no-frame-positions")
    assert "has a shared PlaneOrientation, PixelMeasures (pixel spacing), a slice step" in clear.message
    # the untouched emri_small files carry no PatientID: their study is quarantined, the batch goes on
    raw_emri = next(o for o in report.quarantined if "emri" in o.where)
    assert raw_emri.reason == "missing-patient-id" and raw_emri.study in raw_emri.message
    # every file is accounted for: landed, or in an outcome by path or by its study
    decided_studies = {o.study for o in report.outcomes if o.study}
    named = {o.where for o in report.outcomes}
    landed_series = set(by_source)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if str(path) in named:
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        study_of = pseudonymise(str(ds.StudyInstanceUID), "study", key)
        series_of = pseudonymise(str(ds.SeriesInstanceUID), "series", key)
        assert series_of in landed_series or study_of in decided_studies, path
    reasons = report.reason_counts()
    assert reasons.get("not-dicom", 0) >= 4 and "unsupported-sop-class" in reasons
    assert "truncated" in reasons
    assert any(o.outcome is Outcome.IGNORED and "CT" in o.message for o in report.ignored)
    objects = {str(p): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert_no_phi_in(objects, phi + [FOREIGN_PATIENT, str(root)])
