"""Series classification on synthetic DCE studies (GE and Siemens naming, shuffled file names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_series import dce_study, identity, write_series

from breastflow.dicom.classify import SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.errors import NoPreContrast, Reason
from breastflow.dicom.series import group_series, group_studies


def _studies(folder: Path):
    headers, problems = probe_headers(discover(str(folder)))
    assert problems == []
    return group_studies(group_series(headers))


@pytest.mark.parametrize("style", ["ge", "siemens"])
def test_dce_study_phases_by_timing(tmp_path: Path, style: str) -> None:
    expected = dce_study(tmp_path, style=style)
    (study,) = _studies(tmp_path)
    classified = classify_study(study)
    assert {c.series.series_uid: c.name for c in classified} == expected
    by_name = {c.name: c for c in classified}
    assert [by_name[f"post_{k}"].seconds_after_pre for k in (1, 2, 3)] == [90.0, 210.0, 360.0]
    assert by_name["pre"].seconds_after_pre == 0.0 and by_name["pre"].role is SeriesRole.PRE
    assert by_name["t2"].role is SeriesRole.T2
    assert by_name["unknown_20"].role is SeriesRole.UNKNOWN and "derived" in by_name["unknown_20"].reason


def test_timing_beats_description_order(tmp_path: Path) -> None:
    """Descriptions say 1st/2nd/3rd, but acquisition times put "3rd pass" first: timing wins."""
    expected = dce_study(tmp_path, style="ge", times=("100000", "100600", "100330", "100130"))
    (study,) = _studies(tmp_path)
    names = {c.series.series_uid: c.name for c in classify_study(study)}
    flipped = {uid: {"post_1": "post_3", "post_3": "post_1"}.get(n, n) for uid, n in expected.items()}
    assert names == flipped


def test_pre_without_hint_is_earliest_without_contrast(tmp_path: Path) -> None:
    for k, time in enumerate(("090000", "090130", "090300")):
        write_series(tmp_path, series=f"s{k}", number=k + 1, description="Ax Vibrant MultiPhase",
                     acquisition_time=time, contrast_agent="GADAVIST" if k else None, seed=k)
    (study,) = _studies(tmp_path)
    assert [c.name for c in classify_study(study)] == ["pre", "post_1", "post_2"]


def test_study_without_pre_raises(tmp_path: Path) -> None:
    for k, time in enumerate(("090130", "090300")):
        write_series(tmp_path, series=f"s{k}", number=k + 1, description=f"ax dyn {k + 1}st pass",
                     acquisition_time=time, contrast_agent="GADAVIST", seed=k)
    (study,) = _studies(tmp_path)
    with pytest.raises(NoPreContrast) as info:
        classify_study(study)
    assert info.value.reason is Reason.NO_PRE_CONTRAST
    assert identity().PatientID not in str(info.value)


def test_unrecognised_and_mismatched_series_are_unknown_with_reason(tmp_path: Path) -> None:
    write_series(tmp_path, series="pre", number=1, description="ax dyn pre", acquisition_time="100000", seed=1)
    write_series(tmp_path, series="post", number=2, description="ax dyn 1st pass", acquisition_time="100130",
                 contrast_agent="GADAVIST", n_slices=5, seed=2)
    write_series(tmp_path, series="what", number=3, description="research_seq_42", acquisition_time="100200", seed=3)
    (study,) = _studies(tmp_path)
    classified = classify_study(study)
    assert [c.role for c in classified] == [SeriesRole.PRE, SeriesRole.UNKNOWN, SeriesRole.UNKNOWN]
    assert "slice count" in classified[1].reason and classified[1].seconds_after_pre == 90.0
    assert "without dynamic or contrast hint" in classified[2].reason
