"""Synthetic DICOM series written with pydicom (and the phantom's writer helpers).

A plain module (not conftest) so tests import it by a unique name."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import uid
from pydicom.dataset import Dataset

from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.dicom_io import apply_identity, make_uid, save, set_pixels
from breastflow.phantom.phi import FakeIdentity, draw_identity

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class WrittenSeries:
    """Paths of a synthetic series and the volume it should read back as, sorted along z."""

    paths: list[Path]
    expected: np.ndarray  # (Z, Y, X) stored values, slices in ascending position
    series_uid: str


def identity(index: int = 0) -> FakeIdentity:
    """A seeded fake identity (PHI-looking values for leak tests)."""
    return draw_identity(np.random.default_rng(1234 + index), index)


def write_series(
    folder: Path,
    *,
    study: str = "study-a",
    series: str = "series-1",
    number: int = 1,
    description: str = "ax dyn pre",
    acquisition_time: str = "101500",
    contrast_agent: str | None = None,
    n_slices: int = 6,
    rows: int = 8,
    columns: int = 10,
    step: float = 2.5,
    positions: list[float] | None = None,
    orientation: tuple[float, ...] = AXIAL,
    slope: float = 1.0,
    intercept: float = 0.0,
    manufacturer: str = "GE MEDICAL SYSTEMS",
    syntax: TransferSyntax = TransferSyntax.EXPLICIT_LE,
    person: FakeIdentity | None = None,
    seed: int = 0,
    echo_time: float = 2.1,
    repetition_time: float = 5.0,
) -> WrittenSeries:
    """Write single-frame MR slices with shuffled, meaningless file names.

    ``positions`` (mm along z) overrides the regular ``step`` grid, for gap and
    duplicate cases. Returns the expected array sorted by position.
    """
    person = person or identity()
    rng = np.random.default_rng(seed)
    zs = positions if positions is not None else [i * step for i in range(n_slices)]
    pixels = rng.integers(0, 4096, size=(len(zs), rows, columns), dtype=np.uint16)
    study_uid, series_uid = make_uid("study", study), make_uid("series", study, series)
    names = [f"{random.Random(seed).getrandbits(40):x}{i:03d}" for i in range(len(zs))]
    random.Random(seed + 1).shuffle(names)
    paths = []
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, col)
    for i, z in enumerate(zs):
        ds = Dataset()
        ds.SOPClassUID = uid.MRImageStorage
        ds.SOPInstanceUID = make_uid("instance", study, series, i)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = make_uid("for", study)
        ds.Modality = "MR"
        ds.Manufacturer = manufacturer
        ds.ManufacturerModelName = "SIGNA HDxt"
        ds.MagneticFieldStrength = 1.5
        ds.SeriesNumber, ds.InstanceNumber = number, len(zs) - i  # instance order != position order
        ds.SeriesDescription = description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = echo_time, repetition_time, 10.0
        ds.AcquisitionDate = person.StudyDate
        ds.AcquisitionTime = acquisition_time
        ds.SeriesDate, ds.SeriesTime = person.StudyDate, acquisition_time
        if contrast_agent:
            ds.ContrastBolusAgent = contrast_agent
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = [float(v) for v in (np.array([-40.0, -30.0, 0.0]) + z * normal)]
        ds.PixelSpacing = [0.7, 0.8]
        ds.SliceThickness = step
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        apply_identity(ds, person)
        ds.add_new(0x00091010, "LO", person.PatientName)  # private tag holding PHI
        set_pixels(ds, pixels[i], bits_stored=12)
        path = folder / study / names[i]
        save(ds, path, syntax)
        paths.append(path)
    order = np.argsort(np.asarray(zs), kind="stable")
    return WrittenSeries(paths=paths, expected=pixels[order], series_uid=series_uid)


def dce_study(folder: Path, *, style: str, person: FakeIdentity | None = None, study: str = "dce",
              times: tuple[str, ...] = ("100000", "100130", "100330", "100600")) -> dict[str, str]:
    """Pre + 3 posts (90-150 s apart) + T2 + a subtraction, in GE or Siemens naming.

    Returns series UID -> expected role name (``pre``, ``post_1`` ...).
    """
    if style == "ge":
        descriptions = ["ax dyn pre", "ax dyn 1st pass", "ax dyn 2nd pass", "ax dyn 3rd pass"]
        t2, sub = "Ax T2 FSE", "SUB ax dyn 1st pass"
    else:
        descriptions = ["t1_fl3d_tra_dynVIEWS_spair_pre", "t1_fl3d_tra_dynVIEWS_spair 1st pass",
                        "t1_fl3d_tra_dynVIEWS_spair 2nd pass", "t1_fl3d_tra_dynVIEWS_spair 3rd pass"]
        t2, sub = "t2_tse_tra", "t1_fl3d_tra_dynVIEWS_spair_SUB"
    expected = {}
    numbers = [7, 3, 9, 5]  # series numbers deliberately out of time order
    for k, (description, time, number) in enumerate(zip(descriptions, times, numbers)):
        written = write_series(folder, study=study, series=f"dce{k}", number=number, description=description,
                               acquisition_time=time, contrast_agent="GADAVIST" if k else None,
                               person=person, seed=k)
        expected[written.series_uid] = "pre" if k == 0 else f"post_{k}"
    written = write_series(folder, study=study, series="t2", number=2, description=t2, acquisition_time="095000",
                           echo_time=90.0, repetition_time=4000.0, person=person, seed=11)
    expected[written.series_uid] = "t2"
    written = write_series(folder, study=study, series="sub", number=20, description=sub,
                           acquisition_time="100131", person=person, seed=12)
    expected[written.series_uid] = "unknown_20"
    return expected
