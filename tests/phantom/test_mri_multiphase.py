"""``--multiphase-series``: one series holding every DCE phase, pixels equal to the per-phase cohort."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom

from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.mri import write_mri_study


def _write(root: Path, multiphase: bool) -> tuple[dict, list[pydicom.Dataset]]:
    config = PhantomConfig(studies=1, seed=9, t2_fraction=0.0, multiphase_series=multiphase)
    result = write_mri_study(root, 0, config, TransferSyntax.EXPLICIT_LE)
    return result.study, [pydicom.dcmread(p) for p in sorted((root / "dicom").rglob("*.dcm"))]


def test_multiphase_series_headers_and_pixels(tmp_path: Path) -> None:
    row, merged = _write(tmp_path / "multi", True)
    _, separate = _write(tmp_path / "separate", False)
    k = int(row["n_post_phases"]) + 1
    assert len({ds.SeriesInstanceUID for ds in merged}) == 1 and len({ds.SeriesNumber for ds in merged}) == 1
    assert len({ds.SeriesTime for ds in merged}) == 1 and len({ds.SeriesDescription for ds in merged}) == 1
    assert sorted(int(ds.InstanceNumber) for ds in merged) == list(range(1, len(merged) + 1))
    assert {int(ds.NumberOfTemporalPositions) for ds in merged} == {k}
    phases = defaultdict(list)
    for ds in merged:
        phases[int(ds.TemporalPositionIdentifier)].append(ds)
    assert sorted(phases) == list(range(1, k + 1))
    triggers = [{float(ds.TriggerTime) for ds in phases[t]} for t in sorted(phases)]
    times = [{str(ds.AcquisitionTime) for ds in phases[t]} for t in sorted(phases)]
    assert all(len(s) == 1 for s in triggers + times)
    assert [min(s) for s in triggers] == sorted(min(s) for s in triggers) and len(set.union(*times)) == k
    assert [bool(phases[t][0].get("ContrastBolusAgent")) for t in sorted(phases)] == [False] + [True] * (k - 1)
    # pixels: phase t of the merged series == the separately written phase t (same seed)
    by_phase = defaultdict(list)
    for ds in separate:
        by_phase[int(ds.TemporalPositionIdentifier)].append(ds)
    for t in sorted(phases):
        a = sorted(phases[t], key=lambda ds: float(ds.ImagePositionPatient[2]))
        b = sorted(by_phase[t], key=lambda ds: float(ds.ImagePositionPatient[2]))
        np.testing.assert_array_equal(np.stack([ds.pixel_array for ds in a]), np.stack([ds.pixel_array for ds in b]))
        assert [str(ds.AcquisitionTime) for ds in a[:1]] == [str(ds.AcquisitionTime) for ds in b[:1]]
