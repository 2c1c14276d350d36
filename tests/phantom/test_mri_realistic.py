"""One realistic-profile (Duke-scale) study end to end (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from phantom_reading import read_mask, read_study

from breastflow.phantom.config import PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.mri import write_mri_study


@pytest.mark.slow
def test_realistic_study(tmp_path: Path) -> None:
    config = PhantomConfig(studies=1, seed=3, profile=Profile.REALISTIC, t2_fraction=1.0)
    result = write_mri_study(tmp_path, 0, config, TransferSyntax.EXPLICIT_LE)
    pd.DataFrame([result.study]).to_csv(tmp_path / "cohort.csv", index=False)
    row = result.study
    assert row["matrix"] in (320, 448, 512) and 100 <= row["n_slices"] <= 180
    assert 1.0 <= row["slice_spacing_mm"] <= 1.2
    series = read_study(tmp_path, "PH0000")
    pre = series["pre"]
    assert pre.volume.shape == (row["n_slices"], row["matrix"], row["matrix"])
    assert 0.5 < float(pre.first.PixelSpacing[0]) < 1.2
    mask, _ = read_mask(tmp_path, "PH0000")
    assert mask.shape == pre.volume.shape
    for les in result.lesions:
        inside = mask == les["lesion_id"]
        sub = series["post1"].volume - pre.volume
        assert np.median(sub[inside]) > 3 * np.median(sub[(mask == 0) & (pre.volume > np.percentile(pre.volume, 70))])
    assert "t2" in series and series["t2"].first.ScanOptions == ""
