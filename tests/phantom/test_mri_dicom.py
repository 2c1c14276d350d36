"""The phantom MRI files as an ingest pipeline sees them: readable, complete, consistent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from dciodvfy_path import DCIODVFY
from phantom_reading import read_mask, read_study
from pydicom.uid import MRImageStorage

# MR Image IOD (PS3.3 A.4): Type 1/2 attributes of its mandatory modules
# (Patient, General Study, General Series, Frame of Reference, General Equipment,
# General Image, Image Plane, Image Pixel, MR Image, SOP Common).
REQUIRED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "Modality", "SeriesInstanceUID", "SeriesNumber", "PatientPosition",
    "FrameOfReferenceUID", "PositionReferenceIndicator", "Manufacturer",
    "InstanceNumber", "PatientOrientation", "ContentDate", "ContentTime",
    "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PixelData",
    "ImageType", "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType",
    "RepetitionTime", "EchoTime", "EchoTrainLength", "FlipAngle", "SpacingBetweenSlices",
    "SOPClassUID", "SOPInstanceUID",
    # asked for beyond the IOD minimum
    "ManufacturerModelName", "MagneticFieldStrength", "SliceLocation", "RescaleSlope", "RescaleIntercept",
    "AcquisitionDate", "SeriesDate", "AcquisitionTime", "SeriesTime", "SeriesDescription",
)


def _all_files(root: Path) -> list[Path]:
    return sorted((root / "dicom").rglob("*.dcm"))


def test_every_file_reads_and_has_required_attributes(mri_cohort: Path) -> None:
    files = _all_files(mri_cohort)
    cohort = pd.read_csv(mri_cohort / "cohort.csv")
    assert len(files) == cohort["n_files"].sum()
    sop_uids = set()
    for f in files:
        ds = pydicom.dcmread(f)
        missing = [k for k in REQUIRED if k not in ds]
        assert not missing, f"{f}: missing {missing}"
        assert ds.SOPClassUID == MRImageStorage and ds.Modality == "MR"
        assert ds.BitsStored in (12, 16) and ds.BitsAllocated == 16 and ds.PixelRepresentation == 0
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.pixel_array.dtype == np.uint16 and int(ds.pixel_array.max()) < 2 ** ds.BitsStored
        assert f.parent.name == str(ds.SeriesNumber) and f.name == f"{int(ds.InstanceNumber):04d}.dcm"
        sop_uids.add(ds.SOPInstanceUID)
    assert len(sop_uids) == len(files)


@pytest.mark.parametrize("study", ["PH0000", "PH0001", "PH0002", "PH0003"])
def test_geometry_and_timing_round_trip(mri_cohort: Path, study: str) -> None:
    series = read_study(mri_cohort, study)
    row = pd.read_csv(mri_cohort / "cohort.csv").set_index("study_id").loc[study]
    frames = {s.first.FrameOfReferenceUID for s in series.values()}
    studies = {s.first.StudyInstanceUID for s in series.values()}
    assert len(frames) == 1 and studies == {row["study_instance_uid"]}
    for name, s in series.items():
        ds0 = s.first
        assert list(map(float, ds0.ImageOrientationPatient)) == [1, 0, 0, 0, 1, 0]
        ipp = np.array([list(map(float, d.ImagePositionPatient)) for d in s.datasets])
        steps = np.diff(ipp, axis=0)
        np.testing.assert_allclose(steps[:, :2], 0, atol=1e-6)
        np.testing.assert_allclose(steps[:, 2], float(ds0.SpacingBetweenSlices), atol=1e-4)
        np.testing.assert_allclose([float(d.SliceLocation) for d in s.datasets], ipp[:, 2], atol=1e-6)
        assert float(ds0.SliceThickness) >= float(ds0.SpacingBetweenSlices) - 1e-6
        assert len({d.SeriesInstanceUID for d in s.datasets}) == 1
        if name != "t2":
            assert s.volume.shape == (row["n_slices"], row["matrix"], row["matrix"])
            assert "FS" in ds0.ScanOptions and ds0.MRAcquisitionType == "3D"
        else:
            assert "FS" not in ds0.ScanOptions
        assert ("ContrastBolusAgent" in ds0) == name.startswith("post")
    # phases 1.5-2.5 min apart, in order, all on the study date
    names = ["pre"] + [f"post{k}" for k in range(1, int(row["n_post_phases"]) + 1)]
    assert row["phases_present"] == ";".join(names)

    def seconds(tm: str) -> float:
        return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])

    times = [seconds(series[n].first.AcquisitionTime) for n in names]
    gaps = np.diff(times)
    assert np.all((gaps >= 90) & (gaps <= 150)), gaps
    assert [int(series[n].first.TemporalPositionIdentifier) for n in names] == list(range(1, len(names) + 1))
    triggers = [float(series[n].first.TriggerTime) for n in names]
    np.testing.assert_allclose(np.diff(triggers) / 1000.0, gaps, atol=1e-3)
    for s in series.values():
        assert s.first.AcquisitionDate == s.first.StudyDate == s.first.SeriesDate == s.first.ContentDate


def test_mask_affine_matches_dicom_geometry(mri_cohort: Path) -> None:
    """NIfTI (i, j, k) = DICOM (column, row, sorted slice); affine = LPS->RAS of the DICOM geometry."""
    for study in ("PH0000", "PH0005"):
        pre = read_study(mri_cohort, study)["pre"]
        mask, affine = read_mask(mri_cohort, study)
        assert mask.shape == pre.volume.shape and mask.dtype == np.uint8
        dy, dx = map(float, pre.first.PixelSpacing)
        for k, r, c in [(0, 0, 0), (3, 10, 20), (len(pre.datasets) - 1, 5, 7)]:
            lps = np.asarray(pre.datasets[k].ImagePositionPatient, dtype=float) + [c * dx, r * dy, 0.0]
            ras = affine @ [c, r, k, 1.0]
            np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)


def test_cohort_tables_consistent(mri_cohort: Path) -> None:
    cohort = pd.read_csv(mri_cohort / "cohort.csv")
    lesions = pd.read_csv(mri_cohort / "lesions.csv")
    assert list(cohort["study_id"]) == [f"PH{i:04d}" for i in range(len(cohort))]
    counts = lesions.groupby("study_id").size().reindex(cohort["study_id"], fill_value=0)
    assert list(counts) == list(cohort["n_lesions"])
    assert set(cohort["transfer_syntax"]) == {"explicit-le", "jpeg2000-lossless", "jpegls-lossless", "rle"}
    assert set(lesions["class"]) <= {"benign", "malignant"}
    assert set(lesions["curve_type"]) <= {"persistent", "plateau", "washout"}
    for _, les in lesions.iterrows():
        mask, _ = read_mask(mri_cohort, les["study_id"])
        k, r, c = np.nonzero(mask == les["lesion_id"])
        assert (k.min(), k.max(), r.min(), r.max(), c.min(), c.max()) == (
            les["start_slice"], les["end_slice"], les["start_row"], les["end_row"],
            les["start_column"], les["end_column"])


def test_phi_json_lists_what_headers_hold(mri_cohort: Path) -> None:
    import json

    phi = json.loads((mri_cohort / "phi.json").read_text())
    ds = pydicom.dcmread(next((mri_cohort / "dicom" / "PH0003").rglob("*.dcm")))
    values = set(phi["PH0003"]["phi_values"])
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
                    "StudyDate", "StationName", "DeviceSerialNumber", "OtherPatientIDs"):
        assert str(ds.data_element(keyword).value) in values, keyword
    assert phi["PH0003"]["attributes"]["AcquisitionDate"] == ds.AcquisitionDate
    # folder and file names carry no PHI
    names = {p.name for p in (mri_cohort / "dicom").rglob("*")}
    assert not names & values


# TriggerTime is written on purpose: GE and Siemens DCE series carry it (time of
# the phase from the start of the dynamic run) although the IOD reserves it for
# cardiac-gated acquisitions, and ingest code has to cope with it.
KNOWN_DEVIATIONS = ("Element=<TriggerTime>",)


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools' dciodvfy not installed")
def test_dciodvfy_reports_no_errors(mri_cohort: Path) -> None:
    for study in ("PH0000", "PH0001", "PH0002"):
        for folder in sorted((mri_cohort / "dicom" / study).iterdir()):
            f = next(folder.glob("*.dcm"))
            run = subprocess.run([DCIODVFY, str(f)], capture_output=True, text=True, check=False)
            lines = (run.stdout + run.stderr).splitlines()
            assert any(line.strip() == "MRImage" for line in lines), lines[:5]
            errors = [line for line in lines
                      if line.startswith("Error") and not any(k in line for k in KNOWN_DEVIATIONS)]
            assert not errors, f"{f}: {errors}"
