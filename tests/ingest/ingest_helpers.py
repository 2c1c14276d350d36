"""Test helpers: phantom cohorts with PHI, an independent pydicom reader, PHI grep."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom

from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study

KEY = "k" * 16 + "0123456789abcdef-ingest-tests"


@dataclass(frozen=True)
class Cohort:
    root: Path  # holds dicom/<study_id>/<series>/<n>.dcm
    studies: list[dict]  # cohort rows
    phi_values: list[str]  # every PHI string written (plus the raw UIDs)

    @property
    def dicom(self) -> Path:
        return self.root / "dicom"


def write_cohort(root: Path, indices: list[int], syntaxes: list[TransferSyntax], seed: int = 5) -> Cohort:
    config = PhantomConfig(studies=max(indices) + 1, seed=seed, t2_fraction=0.0)
    rows, phi = [], set()
    for index, syntax in zip(indices, syntaxes, strict=True):
        result = write_mri_study(root, index, config, syntax)
        rows.append(result.study)
        phi.update(result.phi_values)
        phi.add(str(result.study["study_instance_uid"]))
    return Cohort(root=root, studies=rows, phi_values=sorted(v for v in phi if len(v) >= 4))



def new_bucket(server) -> str:
    bucket = f"bf-{uuid.uuid4().hex[:12]}"
    server.make_bucket(bucket)
    return bucket


def read_series_with_pydicom(folder: Path) -> np.ndarray:
    """Stack a single-frame series sorted by position along the slice normal, rescale applied."""
    datasets = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    iop = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    datasets.sort(key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))))
    slices = []
    for ds in datasets:
        pixels = ds.pixel_array
        slope, intercept = float(getattr(ds, "RescaleSlope", 1)), float(getattr(ds, "RescaleIntercept", 0))
        if (slope, intercept) != (1.0, 0.0):
            pixels = pixels * slope + intercept
        slices.append(pixels)
    return np.stack(slices)


def phi_patterns(phi_values: list[str]) -> list[re.Pattern[bytes]]:
    """Byte patterns of PHI values. Short values (a 4-digit StudyID, a 6-digit
    time) would match inside hex digests and compressed bytes by chance, so
    they must stand alone (no letter or digit on either side); long values
    match anywhere."""
    patterns = []
    for value in phi_values:
        escaped = re.escape(value.encode())
        patterns.append(re.compile(escaped if len(value) >= 8 else rb"(?<![0-9A-Za-z])" + escaped
                                   + rb"(?![0-9A-Za-z])"))
    return patterns


def assert_no_phi_in(objects: dict[str, bytes], phi_values: list[str]) -> None:
    """Every byte of every object is free of every PHI value."""
    assert objects
    patterns = phi_patterns(phi_values)
    for name, data in objects.items():
        for pattern in patterns:
            assert not pattern.search(data), f"PHI value {pattern.pattern!r} leaked into {name}"
