"""DICOM headers of the phantom MR series (MR Image IOD, one file per slice).

:func:`series_template` builds every attribute shared by a series once;
:func:`instance_dataset` adds the per-slice ones (SOP Instance UID,
InstanceNumber, ImagePositionPatient, SliceLocation, pixels) as *new* data
elements, so the template is never mutated and a series costs one template plus
a cheap per-slice update.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from breastflow.phantom.dicom_io import apply_identity, set_pixels
from breastflow.phantom.geometry import IMAGE_ORIENTATION, Grid
from breastflow.phantom.phi import FakeIdentity
from breastflow.phantom.protocol import Protocol


class SeriesKind(str, Enum):
    """What a phantom MR series holds."""

    PRE = "pre"
    POST = "post"
    T2 = "t2"


@dataclass(frozen=True)
class SeriesInfo:
    """Series-level choices that vary within a study.

    Attributes:
        kind: pre-contrast, post-contrast or T2.
        phase: DCE phase (0 = pre, 1..4 = post); 0 for T2.
        series_number: SeriesNumber (also the folder name).
        description: SeriesDescription.
        series_uid: SeriesInstanceUID.
        grid: voxel grid of the series.
        start_s: acquisition start, seconds after StudyTime (e.g. 754.3).
        study_start_s: StudyTime in seconds after midnight.
        window: ``(center, width)`` in real-world values.
    """

    kind: SeriesKind
    phase: int
    series_number: int
    description: str
    series_uid: str
    grid: Grid
    start_s: float
    study_start_s: float
    window: tuple[float, float]


def dicom_time(seconds_after_midnight: float) -> str:
    """Seconds after midnight -> DICOM TM ``HHMMSS.ffffff`` (wraps at 24 h)."""
    s = seconds_after_midnight % 86400.0
    h, rem = divmod(s, 3600.0)
    m, sec = divmod(rem, 60.0)
    return f"{int(h):02d}{int(m):02d}{sec:09.6f}"


def seconds_of(tm: str) -> float:
    """DICOM TM ``HHMMSS[.f]`` -> seconds after midnight."""
    return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])


def series_template(
    identity: FakeIdentity,
    protocol: Protocol,
    info: SeriesInfo,
    study_uid: str,
    frame_uid: str,
    n_dce_phases: int,
) -> Dataset:
    """All attributes shared by the slices of one series (no pixel data).

    Args:
        identity: fake patient/study identity (PHI).
        protocol: the study protocol (vendor, scanner, sequence parameters).
        info: series choices.
        study_uid, frame_uid: StudyInstanceUID and FrameOfReferenceUID (shared by the study).
        n_dce_phases: pre + post phases of the study (NumberOfTemporalPositions).
    """
    v, g = protocol.vendor, info.grid
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"] if v.key == "siemens" else ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.SOPClassUID = MRImageStorage
    apply_identity(ds, identity)
    ds.PatientAge = f"{int(identity.StudyDate[:4]) - int(identity.PatientBirthDate[:4]):03d}Y"
    ds.StudyInstanceUID = study_uid
    ds.StudyDescription = "MRI BREAST BILATERAL W WO CONTRAST"
    for keyword in ("AcquisitionDate", "SeriesDate", "ContentDate"):
        setattr(ds, keyword, identity.StudyDate)
    t = dicom_time(info.study_start_s + info.start_s)
    ds.SeriesTime = t
    ds.AcquisitionTime = t
    ds.ContentTime = dicom_time(info.study_start_s + info.start_s + 0.5 * protocol.phase_seconds)
    ds.Modality = "MR"
    ds.Manufacturer = v.manufacturer
    ds.ManufacturerModelName = protocol.model.name
    ds.StationName = protocol.station_name
    ds.DeviceSerialNumber = protocol.device_serial
    ds.SoftwareVersions = {"ge": "24\\LX\\MR Software release:24.0", "siemens": "syngo MR B17"}.get(v.key, "5.1.7")
    ds.SeriesDescription = info.description
    ds.ProtocolName = "BREAST DCE" if info.kind is not SeriesKind.T2 else "BREAST T2"
    ds.BodyPartExamined = "BREAST"
    ds.PatientPosition = v.patient_position
    ds.SeriesInstanceUID = info.series_uid
    ds.SeriesNumber = info.series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.PatientOrientation = ""
    ds.ImageLaterality = "B"  # bilateral FOV (satisfies the paired-organ Laterality condition)
    ds.ImageOrientationPatient = list(IMAGE_ORIENTATION)
    ds.PixelSpacing = [round(g.pixel_spacing[0], 6), round(g.pixel_spacing[1], 6)]
    ds.SliceThickness = round(g.slice_thickness, 6)
    ds.SpacingBetweenSlices = round(g.slice_spacing, 6)
    ds.MagneticFieldStrength = protocol.model.field_strength
    ds.ImagingFrequency = round(42.577478 * protocol.model.field_strength, 6)
    ds.ImagedNucleus = "1H"
    ds.NumberOfAverages = 1
    ds.EchoNumbers = 1
    ds.ReceiveCoilName = {"ge": "8HRBREAST", "siemens": "BreastMatrix"}.get(v.key, "SENSE-Breast-7")
    ds.TransmitCoilName = "Body"
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.AcquisitionMatrix = [0, g.cols, g.rows, 0]
    ds.PercentSampling = 100
    ds.PercentPhaseFieldOfView = 100
    if info.kind is SeriesKind.T2:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = v.t2_sequence_name
        ds.RepetitionTime = 4200.0
        ds.EchoTime = 90.0
        ds.EchoTrainLength = 16
        ds.FlipAngle = 90.0
    else:
        ds.ScanningSequence = v.scanning_sequence
        ds.SequenceVariant = v.sequence_variant
        ds.ScanOptions = v.scan_options
        ds.MRAcquisitionType = "3D"
        ds.SequenceName = v.sequence_name
        ds.RepetitionTime = protocol.repetition_time
        ds.EchoTime = protocol.echo_time
        ds.EchoTrainLength = 1
        ds.FlipAngle = protocol.flip_angle
        ds.TriggerTime = round(1000.0 * (info.start_s - protocol.pre_start_s), 1)
        ds.TemporalPositionIdentifier = info.phase + 1
        ds.NumberOfTemporalPositions = n_dce_phases
    ds.AngioFlag = "N"
    if info.kind is SeriesKind.POST:
        inj = protocol.pre_start_s + protocol.phase_seconds + protocol.injection_delay_s
        ds.ContrastBolusAgent = "MAGNEVIST" if v.key != "siemens" else "MULTIHANCE"
        ds.ContrastBolusRoute = "IV"
        ds.ContrastBolusVolume = 15.0
        ds.ContrastBolusStartTime = dicom_time(info.study_start_s + inj)
        ds.ContrastBolusIngredient = "GADOLINIUM"
    ds.RescaleIntercept = 0
    ds.RescaleSlope = protocol.rescale_slope if info.kind is not SeriesKind.T2 else 1.0
    ds.RescaleType = "US"
    ds.WindowCenter = round(info.window[0], 2)
    ds.WindowWidth = round(info.window[1], 2)
    return ds


def instance_dataset(
    template: Dataset,
    grid: Grid,
    k: int,
    instance_number: int,
    sop_uid: str,
    pixels: np.ndarray,
    bits_stored: int,
) -> Dataset:
    """One slice: template + per-instance attributes + pixels.

    Args:
        template: from :func:`series_template` (not modified).
        grid: the series grid; ``k`` indexes its slices (0 = most inferior).
        instance_number: InstanceNumber (vendor order, see ``VendorStyle``).
        sop_uid: SOPInstanceUID.
        pixels: uint16 ``(rows, cols)`` stored values.
        bits_stored: 12 or 16.
    """
    ds = Dataset()
    ds.update(template)  # shares the template's elements; all changes below add new ones
    ds.add_new(0x00080018, "UI", sop_uid)
    ds.add_new(0x00200013, "IS", instance_number)
    pos = grid.position(k)
    ds.add_new(0x00200032, "DS", [round(p, 6) for p in pos])
    ds.add_new(0x00201041, "DS", round(pos[2], 6))
    set_pixels(ds, pixels, bits_stored)
    return ds
