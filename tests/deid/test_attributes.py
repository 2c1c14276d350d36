"""De-identified series attributes carry no PHI value the phantom wrote, in any date format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breastflow.deid.attributes import deidentify_series_attrs
from breastflow.deid.profile import KEPT_ATTRIBUTES, PHI_ACTIONS, Action, find_phi
from breastflow.deid.pseudonym import pseudonymise
from breastflow.dicom.classify import SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.series import group_series, group_studies
from breastflow.dicom.volume import read_volume
from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import Modality, PhantomConfig
from breastflow.phantom.phi import draw_identity

KEY = b"secret-key-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("deid")
    write_cohort(root / "mri", PhantomConfig(studies=2, seed=9, t2_fraction=1.0))
    write_cohort(root / "mg", PhantomConfig(studies=1, seed=9, modality=Modality.MAMMO))
    return [root / "mri", root / "mg"]


def _phi_values(cohort: Path) -> list[str]:
    values = set()
    for study in json.loads((cohort / "phi.json").read_text()).values():
        values.update(study["phi_values"])
    return sorted(values)


def test_attrs_hold_no_phantom_phi(cohorts: list[Path]) -> None:
    for cohort in cohorts:
        phi = _phi_values(cohort)
        assert any(len(v) == 8 and v.isdigit() for v in phi), "phantom should write dates"
        headers, _ = probe_headers(discover(str(cohort / "dicom")))
        for study in group_studies(group_series(headers)):
            classified = classify_study(study)
            pre = next((c for c in classified if c.role is SeriesRole.PRE), None)
            reference = pre.series.acquisition_start if pre else None
            for item in classified:
                attrs = deidentify_series_attrs(read_volume(item.series), KEY, reference, item)
                text = json.dumps(attrs)
                assert find_phi(attrs, phi) == [], item.name
                assert study.patient_id not in text and study.study_uid not in text
                assert item.series.series_uid not in text
                assert attrs["patient_pseudonym"] == pseudonymise(study.patient_id, "patient", KEY)
                assert set(attrs) <= set(KEPT_ATTRIBUTES) | {"patient_pseudonym", "study_pseudonym",
                                                            "series_pseudonym", "deidentification"}


def test_header_only_attrs_and_same_patient_same_pseudonym(cohorts: list[Path]) -> None:
    headers, _ = probe_headers(discover(str(cohorts[0] / "dicom")))
    series = group_series(headers)
    attrs = [deidentify_series_attrs(s, KEY, None) for s in series]
    by_study: dict[str, set] = {}
    for s, a in zip(series, attrs):
        by_study.setdefault(s.study_uid, set()).add(a["patient_pseudonym"])
        assert "shape" not in a and a["seconds_after_pre"] is None
    assert all(len(p) == 1 for p in by_study.values())


def test_find_phi_catches_reformatted_dates_and_name_parts() -> None:
    person = draw_identity(__import__("numpy").random.default_rng(0), 0)
    phi = person.phi_values()
    date = person.StudyDate
    assert find_phi({"x": f"{date[:4]}-{date[4:6]}-{date[6:]}"}, phi) == [date]
    family = person.PatientName.split("^")[0]
    assert family in find_phi(["scan of " + family.lower()], phi)
    assert find_phi({"manufacturer": "GE MEDICAL SYSTEMS", "n": [1, 2.5]}, phi) == []


def test_profile_table_covers_phantom_attributes(cohorts: list[Path]) -> None:
    written = set()
    for cohort in cohorts:
        for study in json.loads((cohort / "phi.json").read_text()).values():
            written.update(study["attributes"])
    uncovered = {a for a in written if a not in PHI_ACTIONS and a.rstrip("s") not in PHI_ACTIONS}
    assert uncovered == set()
    assert all(PHI_ACTIONS[k] is not Action.KEEP for k in PHI_ACTIONS)
