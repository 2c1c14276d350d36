"""Series that cannot be one volume, told at planning with their own reasons:
classic + enhanced exports sharing one SeriesInstanceUID, enhanced objects without
frame positions, Siemens mosaics (built from a phantom study, perturbed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from breastflow.dicom.discover import probe_headers
from breastflow.dicom.errors import MixedClassicEnhanced, MosaicUnsupported, NoFramePositions, Reason
from breastflow.dicom.multiphase import split_phases
from breastflow.dicom.series import group_series
from breastflow.dicom.volume import read_volume
from breastflow.ingest.plan import plan_ingest, series_problem
from breastflow.ingest.pseudonyms import Pseudonymiser
from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study
from breastflow.store.fs import StoreLocation

KEY = b"k" * 16 + b"0123456789abcdef-multiphase-tests"


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("phantom")
    result = write_mri_study(root, 0, PhantomConfig(studies=1, seed=4, t2_fraction=0.0), TransferSyntax.EXPLICIT_LE)
    return root / "dicom" / str(result.study["study_id"]), result.study


def _copy(phantom_study, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the study and the path of its pre-contrast series folder."""
    folder, row = phantom_study
    target = tmp_path / "landing"
    shutil.copytree(folder, target)
    return target, target / str(row["pre_series_number"])


def enhanced_from(folder: Path, target: Path, with_positions: bool) -> Path:
    """One Enhanced MR object holding every slice of a single-frame series (same UIDs of study/series)."""
    slices = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    first = slices[0]
    ds = Dataset()
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "StudyDate", "Modality",
                    "SeriesNumber", "SeriesDescription", "Manufacturer", "BodyPartExamined", "AcquisitionDate",
                    "AcquisitionTime", "SeriesDate", "SeriesTime", "FrameOfReferenceUID", "SliceThickness",
                    "SpacingBetweenSlices", "EchoTime", "RepetitionTime", "FlipAngle", "ReceiveCoilName",
                    "StudyDescription", "ProtocolName", "MagneticFieldStrength"):
        if keyword in first:
            setattr(ds, keyword, first[keyword].value)
    ds.SOPClassUID = uid.EnhancedMRImageStorage
    ds.SOPInstanceUID = uid.generate_uid(entropy_srcs=[str(folder), "enhanced"])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    shared, orientation, measures, transform = Dataset(), Dataset(), Dataset(), Dataset()
    orientation.ImageOrientationPatient = first.ImageOrientationPatient
    measures.PixelSpacing, measures.SliceThickness = first.PixelSpacing, first.SliceThickness
    transform.RescaleSlope, transform.RescaleIntercept = first.RescaleSlope, first.RescaleIntercept
    transform.RescaleType = "US"
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    items = []
    for s in slices:
        item = Dataset()
        if with_positions:
            position = Dataset()
            position.ImagePositionPatient = s.ImagePositionPatient
            item.PlanePositionSequence = Sequence([position])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    for keyword in ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation"):
        setattr(ds, keyword, first[keyword].value)
    ds.NumberOfFrames = len(slices)
    ds.PixelData = np.stack([s.pixel_array for s in slices]).astype("<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(target, enforce_file_format=True)
    return target


def _group_of(folder: Path):
    headers, problems = probe_headers(sorted(str(p) for p in folder.rglob("*") if p.is_file()))
    assert not problems
    (group,) = group_series(headers)
    return group


def _plan(landing: Path, tmp_path: Path):
    return plan_ingest(str(landing), StoreLocation.from_url(str(tmp_path / "store")), Pseudonymiser(KEY))


def _pre_outcome(plan):
    assert all(job.series != "pre" for job in plan.jobs)  # nothing of it is stored
    return next(o for o in plan.outcomes if o.series == "pre")


def test_classic_and_enhanced_exports_in_one_series_are_mixed(phantom_study, tmp_path) -> None:
    landing, pre = _copy(phantom_study, tmp_path)
    enhanced_from(pre, pre / "enhanced.dcm", with_positions=True)
    group = _group_of(pre)
    assert split_phases(group) == [group]  # every position twice, but never split as phases
    problem = series_problem(group)
    assert isinstance(problem, MixedClassicEnhanced) and "share one SeriesInstanceUID" in problem.message
    outcome = _pre_outcome(_plan(landing, tmp_path))
    assert outcome.reason == Reason.MIXED_CLASSIC_ENHANCED.value == "mixed-classic-enhanced"
    assert "classic single-frame and 1 enhanced multi-frame" in outcome.message


def test_enhanced_export_alone_reads_like_the_classic_one(phantom_study, tmp_path) -> None:
    """Control for the test above: the converted enhanced object is a valid series on its own."""
    _, pre = _copy(phantom_study, tmp_path)
    classic = read_volume(_group_of(pre)).array
    alone = tmp_path / "alone"
    alone.mkdir()
    enhanced_from(pre, alone / "enhanced.dcm", with_positions=True)
    group = _group_of(alone)
    assert series_problem(group) is None
    np.testing.assert_array_equal(read_volume(group).array, classic)


def test_enhanced_without_frame_positions_has_its_own_reason(phantom_study, tmp_path) -> None:
    landing, pre = _copy(phantom_study, tmp_path)
    target = tmp_path / "enhanced.dcm"
    enhanced_from(pre, target, with_positions=False)
    shutil.rmtree(pre)
    pre.mkdir()
    shutil.copy(target, pre / "enhanced.dcm")
    problem = series_problem(_group_of(pre))
    assert isinstance(problem, NoFramePositions) and "no per-frame PlanePositionSequence" in problem.message
    outcome = _pre_outcome(_plan(landing, tmp_path))
    assert outcome.reason == "no-frame-positions"


def test_pydicom_enhanced_without_positions_is_no_frame_positions() -> None:
    headers, _ = probe_headers([get_testdata_file("emri_small.dcm")])
    problem = series_problem(group_series(headers)[0])
    assert isinstance(problem, NoFramePositions) and problem.reason is Reason.NO_FRAME_POSITIONS


def test_mosaic_series_is_quarantined_at_planning(phantom_study, tmp_path) -> None:
    """ImageType MOSAIC without a slice count: cannot be un-mosaicked, never stored as the tile."""
    landing, pre = _copy(phantom_study, tmp_path)
    for path in pre.iterdir():
        ds = pydicom.dcmread(path)
        ds.ImageType = [*ds.ImageType, "MOSAIC"]
        ds.save_as(path)
    problem = series_problem(_group_of(pre))
    assert isinstance(problem, MosaicUnsupported)
    outcome = _pre_outcome(_plan(landing, tmp_path))
    assert outcome.reason == "mosaic-unsupported" and "could not be un-mosaicked" in outcome.message
