"""Fake but realistic-looking patient identity (PHI) for phantom studies.

Every value here is invented; it exists so that de-identification can be
tested: a grep of the store for :meth:`FakeIdentity.phi_values` must find
nothing. Values are drawn from a seeded generator, so cohorts are reproducible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import numpy as np

_FAMILY = ("HARTWELL", "OKONKWO", "LINDQVIST", "MARCHETTI", "NAKAMURA", "DUBOIS",
           "FITZGERALD", "KOWALCZYK", "ABERNATHY", "VILLANUEVA", "SORENSEN", "PETROVA")
_GIVEN = ("MARGARET", "ADAEZE", "INGRID", "GIULIA", "HARUKA", "CLEMENCE",
          "SIOBHAN", "AGNIESZKA", "ROSALIND", "XIMENA", "FREJA", "SVETLANA")
_INSTITUTIONS = ("ST ELSEWHERE GENERAL HOSPITAL", "LAKESIDE WOMENS IMAGING CENTER",
                 "NORTHGATE UNIVERSITY MEDICAL", "PINEWOOD BREAST CLINIC")
_PHYSICIANS = ("QUINCEY^ARTHUR^^DR", "BRANDT^HELGA^^DR", "OYELARAN^TUNDE^^DR", "MAYHEW^CLARA^^DR")
_STREETS = ("12 HARBOUR LANE", "400 ELM AVENUE", "7 CHAPEL ROW", "88 QUARRY ROAD")


@dataclass(frozen=True)
class FakeIdentity:
    """PHI-looking header values of one phantom patient/study.

    Attributes mirror the DICOM keywords they are written to.
    """

    PatientName: str
    PatientID: str
    PatientBirthDate: str  # YYYYMMDD
    PatientAddress: str
    OtherPatientIDs: str
    AccessionNumber: str
    InstitutionName: str
    InstitutionAddress: str
    ReferringPhysicianName: str
    StudyDate: str  # YYYYMMDD
    StudyTime: str  # HHMMSS
    StudyID: str

    def phi_values(self) -> list[str]:
        """Every identifying string written to the headers (for leak tests).

        Names are returned both as written (``FAMILY^GIVEN``) and per component,
        so a leak of either part is caught.
        """
        values = set(asdict(self).values())
        for name in (self.PatientName, self.ReferringPhysicianName):
            values.update(part for part in name.split("^") if len(part) > 2)
        return sorted(values)


def draw_identity(rng: np.random.Generator, study_index: int) -> FakeIdentity:
    """Draw one fake identity.

    Args:
        rng: the study's generator (consumed deterministically).
        study_index: index of the study in the cohort; makes IDs unique.
    """
    family = _FAMILY[int(rng.integers(len(_FAMILY)))]
    given = _GIVEN[int(rng.integers(len(_GIVEN)))]
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 50)))
    study = dt.date(2012, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 10)))
    hour, minute, second = int(rng.integers(7, 18)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    mrn = f"MRN{int(rng.integers(10**6, 10**7))}{study_index:05d}"
    institution = int(rng.integers(len(_INSTITUTIONS)))
    return FakeIdentity(
        PatientName=f"{family}^{given}",
        PatientID=mrn,
        PatientBirthDate=birth.strftime("%Y%m%d"),
        PatientAddress=_STREETS[int(rng.integers(len(_STREETS)))] + " SPRINGFIELD",
        OtherPatientIDs=f"OPID{int(rng.integers(10**7, 10**8))}",
        AccessionNumber=f"ACC{int(rng.integers(10**8, 10**9))}",
        InstitutionName=_INSTITUTIONS[institution],
        InstitutionAddress=f"{100 + institution} INFIRMARY WAY SPRINGFIELD",
        ReferringPhysicianName=_PHYSICIANS[int(rng.integers(len(_PHYSICIANS)))],
        StudyDate=study.strftime("%Y%m%d"),
        StudyTime=f"{hour:02d}{minute:02d}{second:02d}",
        StudyID=f"{int(rng.integers(1000, 9999))}",
    )
