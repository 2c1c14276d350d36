"""A tiny ingested phantom store shared by the store-evaluation tests (built once per test process)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

KEY = "metrics-selection-test-key-0123456789abcdef"
_BUILT: dict[str, PhantomStore] = {}


@dataclass(frozen=True)
class PhantomStore:
    """The cohort folder, the store and the study pseudonym of each phantom ``study_id``."""

    cohort: Path
    store: Path
    study_of: dict[str, str]

    def selection(self, query: str) -> str:
        return f"store://{self.store}?{query}"

    def dicom_volume(self, study_id: str, series_number: int) -> np.ndarray:
        """``(Z, Y, X)`` raw pixel data read with pydicom, slices sorted along the slice normal (the store's Z)."""
        files = sorted((self.cohort / "dicom" / study_id / str(series_number)).glob("*.dcm"))
        datasets = [pydicom.dcmread(f) for f in files]

        def position(ds: pydicom.Dataset) -> float:
            row, col = np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
            return float(np.dot(np.cross(row, col), np.asarray(ds.ImagePositionPatient, float)))

        return np.stack([ds.pixel_array for ds in sorted(datasets, key=position)])

    def series_numbers(self, study_id: str) -> dict[str, int]:
        """Series number of ``pre`` and ``post_1`` in the phantom's DICOM folder."""
        row = pd.read_csv(self.cohort / "cohort.csv", dtype=str).set_index("study_id").loc[study_id]
        return {"pre": int(row.pre_series_number), "post_1": int(row.post_series_numbers.split(";")[0])}


def build_phantom_store(base: Path) -> PhantomStore:
    """Three tiny studies (GE 80^2 and 96^2, Siemens 80^2; malignant and benign lesions), ingested."""
    if "store" in _BUILT:
        return _BUILT["store"]
    from breastflow.deid.pseudonym import load_key, pseudonymise
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.ingest.report import ExitStatus
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BREASTFLOW_PSEUDONYM_KEY", KEY)
        cohort = base / "cohort"
        write_cohort(cohort, PhantomConfig(studies=3, seed=1, t2_fraction=0.0))
        report = run_ingest(str(cohort / "dicom"), str(base / "store"),
                            IngestConfig(cluster=ClusterConfig(workers=1, processes=False)))
        assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
        rows = pd.read_csv(cohort / "cohort.csv", dtype=str)
        study_of = {r.study_id: pseudonymise(r.study_instance_uid, "study", load_key()) for r in rows.itertuples()}
    _BUILT["store"] = PhantomStore(cohort=cohort, store=base / "store", study_of=study_of)
    return _BUILT["store"]
