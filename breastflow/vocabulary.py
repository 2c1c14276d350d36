"""The shared vocabulary of breastflow: enums used by more than one subpackage.

Each concept is defined here once; the reading side (:mod:`breastflow.dicom`),
the phantom (:mod:`breastflow.phantom`), the metrics and the data layer import
it from this module (the modules that defined it before re-export it, so their
old import paths keep working). The values are what catalogs, annotation
records and phantom truth tables store: never change them.

* :class:`Laterality`: which breast, as DICOM ImageLaterality (0020,0062).
* :class:`ViewPosition`: the mammographic projection, as DICOM ViewPosition
  (0018,5101) (:class:`breastflow.dicom.classify.MammoView` is this enum).
* :class:`LesionClass`: benign or malignant (paper 001's conditioning labels).
  Stored annotations (:class:`breastflow.store.annotation_commit.LesionBox`)
  keep the class as free text, since imported tables may use other words; the
  phantom writes these values.
* :class:`CurveType`: the BI-RADS kinetic curve type of the delayed phase.
"""

from __future__ import annotations

from enum import Enum


class Laterality(str, Enum):
    """Which breast: image laterality (0020,0062)."""

    LEFT = "L"
    RIGHT = "R"


class ViewPosition(str, Enum):
    """Standard screening mammography projection: view position (0018,5101)."""

    CC = "CC"
    MLO = "MLO"


class LesionClass(str, Enum):
    """Lesion class, as in paper 001's conditioning labels (healthy = no lesion)."""

    BENIGN = "benign"
    MALIGNANT = "malignant"


class CurveType(str, Enum):
    """Delayed-phase shape of a time-intensity curve (BI-RADS MRI lexicon).

    Relative to the early peak, a rise of more than the threshold is
    ``PERSISTENT``, a fall of more than it ``WASHOUT``, anything between ``PLATEAU``.
    """

    PERSISTENT = "persistent"
    PLATEAU = "plateau"
    WASHOUT = "washout"
