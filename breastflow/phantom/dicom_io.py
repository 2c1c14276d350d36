"""Small DICOM writing helpers shared by the MRI and mammography phantoms.

Determinism: UIDs derive from the cohort seed and the object's position in the
cohort (never from time or host), and no timestamps of "now" are written, so
the same config gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from breastflow import __version__
from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.phi import FakeIdentity

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.1"  # pydicom's root + ".1"
IMPLEMENTATION_VERSION = f"BREASTFLOW_{__version__}"[:16]


def make_uid(*entropy: object) -> str:
    """A deterministic UID from ``entropy`` (e.g. seed, study index, series, instance)."""
    return generate_uid(entropy_srcs=[repr(e) for e in entropy])


def apply_identity(ds: Dataset, identity: FakeIdentity) -> None:
    """Write the patient and general-study PHI-looking attributes into ``ds``."""
    ds.PatientName = identity.PatientName
    ds.PatientID = identity.PatientID
    ds.PatientBirthDate = identity.PatientBirthDate
    ds.PatientSex = "F"
    ds.PatientAddress = identity.PatientAddress
    ds.OtherPatientIDs = identity.OtherPatientIDs
    ds.AccessionNumber = identity.AccessionNumber
    ds.InstitutionName = identity.InstitutionName
    ds.InstitutionAddress = identity.InstitutionAddress
    ds.ReferringPhysicianName = identity.ReferringPhysicianName
    ds.StudyDate = identity.StudyDate
    ds.StudyTime = identity.StudyTime
    ds.StudyID = identity.StudyID


def set_pixels(ds: Dataset, pixels: np.ndarray, bits_stored: int) -> None:
    """Attach an unsigned 2D ``(rows, cols)`` image as monochrome pixel data."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {pixels.shape}")
    if pixels.dtype != np.uint16:
        raise ValueError(f"expected uint16 pixels, got {pixels.dtype}")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = (int(n) for n in pixels.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()


def save(ds: Dataset, path: Path, syntax: TransferSyntax) -> None:
    """Write ``ds`` as a DICOM Part 10 file in ``syntax``.

    Compressed syntaxes are encoded losslessly with pydicom's encoders
    (pylibjpeg-openjpeg for JPEG 2000, pyjpegls for JPEG-LS, pydicom/pylibjpeg-rle
    for RLE); the SOP Instance UID is kept so output stays deterministic.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds.file_meta = meta
    if syntax is not TransferSyntax.EXPLICIT_LE:
        ds.compress(syntax.uid, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
