"""Reading a tiny phantom cohort: classification matches its truth table, volumes match pydicom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from breastflow.dicom.classify import SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.series import group_series, group_studies
from breastflow.dicom.volume import read_volume
from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import Modality, PhantomConfig, TransferSyntax


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "mri"
    write_cohort(out, PhantomConfig(studies=2, seed=5, t2_fraction=1.0,
                                    transfer_syntaxes=(TransferSyntax.JPEGLS_LOSSLESS, TransferSyntax.RLE)))
    return out


def test_phantom_classification_matches_truth(cohort: Path) -> None:
    truth = pd.read_csv(cohort / "cohort.csv").set_index("study_instance_uid")
    headers, problems = probe_headers(discover(str(cohort / "dicom")))
    assert problems == []
    studies = group_studies(group_series(headers))
    assert len(studies) == len(truth)
    for study in studies:
        row = truth.loc[study.study_uid]
        by_number = {c.series.series_number: c for c in classify_study(study)}
        assert by_number[int(row.pre_series_number)].role is SeriesRole.PRE
        posts = [int(n) for n in str(row.post_series_numbers).split(";")]
        assert [by_number[n].name for n in posts] == [f"post_{k}" for k in range(1, len(posts) + 1)]
        offsets = [by_number[n].seconds_after_pre for n in posts]
        assert np.allclose(np.diff([0.0, *offsets]), row.phase_interval_s, atol=0.01)
        assert by_number[int(row.t2_series_number)].role is SeriesRole.T2


def test_phantom_volumes_match_pydicom(cohort: Path) -> None:
    headers, _ = probe_headers(discover(str(cohort / "dicom")))
    series = group_series(headers)
    for group in series[:3]:
        volume = read_volume(group)
        datasets = [pydicom.dcmread(p) for p in group.files]
        normal = np.cross(*np.reshape(datasets[0].ImageOrientationPatient, (2, 3)))
        datasets.sort(key=lambda ds: float(np.dot(ds.ImagePositionPatient, normal)))
        reference = np.stack([ds.pixel_array for ds in datasets])
        np.testing.assert_array_equal(volume.array, reference)
        assert volume.array.dtype == reference.dtype


def test_phantom_mammography_views(tmp_path: Path) -> None:
    out = tmp_path / "mg"
    write_cohort(out, PhantomConfig(studies=1, seed=2, modality=Modality.MAMMO))
    headers, problems = probe_headers(discover(str(out / "dicom")))
    assert problems == []
    (study,) = group_studies(group_series(headers))
    names = sorted(c.name for c in classify_study(study))
    assert names == ["mg_L_CC", "mg_L_MLO", "mg_R_CC", "mg_R_MLO"]
    volume = read_volume(study.series[0])
    np.testing.assert_array_equal(volume.array[0], pydicom.dcmread(study.series[0].files[0]).pixel_array)
