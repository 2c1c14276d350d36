"""Independent readers for phantom MRI output used by the phantom tests.

They use only pydicom, nibabel and pandas (never the phantom's own code), so
the tests check the files as an ingest pipeline would see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom


@dataclass
class Series:
    """One series: datasets sorted along the slice normal and real-world voxel values."""

    datasets: list[pydicom.Dataset]
    volume: np.ndarray  # (n_slices, rows, cols) float64, stored * slope + intercept

    @property
    def first(self) -> pydicom.Dataset:
        return self.datasets[0]


def read_series(folder: Path) -> Series:
    dss = [pydicom.dcmread(f) for f in sorted(folder.glob("*.dcm"))]
    iop = np.asarray(dss[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    dss.sort(key=lambda d: float(np.dot(normal, np.asarray(d.ImagePositionPatient, dtype=float))))
    vol = np.stack([d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept)
                    for d in dss])
    return Series(dss, vol)


def read_study(root: Path, study_id: str) -> dict[str, Series]:
    """Series of a study keyed 'pre', 'post1'.., 't2' using cohort.csv's series numbers."""
    row = pd.read_csv(root / "cohort.csv").set_index("study_id").loc[study_id]
    base = root / str(row["dicom_dir"])
    out = {"pre": read_series(base / str(int(row["pre_series_number"])))}
    for k, number in enumerate(str(row["post_series_numbers"]).split(";"), start=1):
        out[f"post{k}"] = read_series(base / number)
    if bool(row["has_t2"]):
        out["t2"] = read_series(base / str(int(row["t2_series_number"])))
    return out


def read_mask(root: Path, study_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Label mask as ``(n_slices, rows, cols)`` and its RAS affine."""
    img = nib.load(str(root / "truth" / f"{study_id}_lesion_mask.nii.gz"))
    return np.asarray(img.dataobj).transpose(2, 1, 0), img.affine
