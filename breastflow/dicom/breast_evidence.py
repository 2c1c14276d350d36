"""Why breastflow believes a series shows the breast: evidence codes from the headers.

Real scanners put DICOM attributes that look "dynamic" (TemporalPositionIdentifier,
TemporalPositionIndex) on every series (Siemens XA enhanced, Philips classic),
so timing alone cannot tell a breast DCE from a brain MPRAGE. Classification
(:mod:`breastflow.dicom.classify`) therefore stores a series as ``pre``,
``post_k`` or ``t2`` only when the headers say *breast*, and records which
headers said so as short, PHI-free :class:`Evidence` codes (the descriptions
themselves may hold PHI and are never stored):

=========================  ==========================================================
code                       header evidence
=========================  ==========================================================
``body-part``              BodyPartExamined is BREAST (or MAMMA, BRUST ...)
``study-description``      StudyDescription names the breast in a vendor language
``series-description``     SeriesDescription names the breast
``protocol-name``          ProtocolName names the breast
``receive-coil``           ReceiveCoilName is a breast coil (8HRBREAST, BreastMatrix ...)
``bilateral-axial-fov``    axial slices whose left-right field of view is wide
                           (>= 280 mm) and at most 0.75 of it front-to-back
``dynamic-contrast-set``   the study holds >= 2 dynamic series (description or
                           contrast agent, not temporal position alone), one with
                           contrast agent or a post-contrast hint, one with a
                           dynamic-sequence name (dyn, vibrant, thrive, twist ...)
``mammography``            modality MG or a mammography SOP class
=========================  ==========================================================

A BodyPartExamined that names another body part (HEAD, BRAIN, KNEE ...)
contradicts every other code for that series (:func:`other_body_part`). The
field of view is the weakest code (a wide abdominal FOV looks alike); a study
labelled only by it is accepted, as the issue asks, and the catalog says so.
"""

from __future__ import annotations

import re
from enum import Enum

import numpy as np

from breastflow.dicom.header import InstanceHeader


class Evidence(str, Enum):
    """Header evidence that a series shows the breast (stable codes; stored in the catalog)."""

    BODY_PART = "body-part"
    STUDY_DESCRIPTION = "study-description"
    SERIES_DESCRIPTION = "series-description"
    PROTOCOL_NAME = "protocol-name"
    RECEIVE_COIL = "receive-coil"
    BILATERAL_AXIAL_FOV = "bilateral-axial-fov"
    DYNAMIC_CONTRAST_SET = "dynamic-contrast-set"
    MAMMOGRAPHY = "mammography"


#: "Breast" in the languages vendors and sites use (en, de, nl, fr, es, pt, it, da/no, sv, fi, pl, la).
#: Long stems match inside words (8HRBREAST, Brustkrebs, MAMMOGRAPHY); short words stand alone.
BREAST_WORDS = re.compile(
    r"breast|brust|borst|mamma|mammo|mamografi|mammografi|bryst|br[oö]st"
    r"|(?<![a-z])(sein|seins|seno|senos|seni|mama|mamas|mama[eo]|rinta|pier[sś]|brst)(?![a-z])",
    re.IGNORECASE,
)
#: BodyPartExamined values that mean the breast.
BREAST_PARTS = frozenset({"BREAST", "MAMMA", "BRUST", "MAMA", "SEIN", "SENO", "BORST", "BRYST"})
#: BodyPartExamined defined terms (PS3.16 CID 4031) that are clearly not the breast.
#: CHEST/THORAX are not listed: sites label breast MRI that way.
OTHER_PARTS = frozenset({
    "HEAD", "BRAIN", "SKULL", "HEADNECK", "NECK", "CSPINE", "TSPINE", "LSPINE", "SSPINE", "SPINE", "WHOLESPINE",
    "KNEE", "ANKLE", "FOOT", "HIP", "PELVIS", "PROSTATE", "SHOULDER", "ELBOW", "WRIST", "HAND", "ABDOMEN",
    "LIVER", "KIDNEY", "PANCREAS", "HEART", "LEG", "ARM", "EXTREMITY", "IAC", "ORBIT", "SELLA", "TMJ",
})
BILATERAL_MIN_WIDTH_MM = 280.0
BILATERAL_MAX_DEPTH_RATIO = 0.75


def text_names_breast(text: str) -> bool:
    """Whether free text (a description, protocol or coil name) names the breast."""
    return bool(text and BREAST_WORDS.search(text))


def bilateral_axial_fov(header: InstanceHeader) -> bool:
    """Axial slices (normal within ~25 degrees of head-feet) with a wide, shallow field of view.

    The left-right extent is the matrix size along whichever in-plane axis is
    closest to patient x, times its pixel spacing.
    """
    frame = header.frames[0] if header.frames else None
    if frame is None or frame.orientation is None or frame.pixel_spacing is None:
        return False
    row, col = np.asarray(frame.orientation[:3]), np.asarray(frame.orientation[3:])
    normal = np.cross(row, col)
    if abs(float(normal[2])) < 0.9:
        return False
    # PixelSpacing = (between rows, between columns); a row runs along the row cosine
    along_row = header.columns * frame.pixel_spacing[1]
    along_col = header.rows * frame.pixel_spacing[0]
    width, depth = (along_row, along_col) if abs(row[0]) >= abs(col[0]) else (along_col, along_row)
    return width >= BILATERAL_MIN_WIDTH_MM and depth <= BILATERAL_MAX_DEPTH_RATIO * width


def header_evidence(header: InstanceHeader, description: str) -> list[Evidence]:
    """Series-level evidence codes from one header (``description``: the series description)."""
    found = []
    if header.body_part in BREAST_PARTS:
        found.append(Evidence.BODY_PART)
    if text_names_breast(description):
        found.append(Evidence.SERIES_DESCRIPTION)
    if text_names_breast(header.protocol_name):
        found.append(Evidence.PROTOCOL_NAME)
    if text_names_breast(header.receive_coil):
        found.append(Evidence.RECEIVE_COIL)
    if bilateral_axial_fov(header):
        found.append(Evidence.BILATERAL_AXIAL_FOV)
    return found


def other_body_part(header: InstanceHeader) -> str | None:
    """The BodyPartExamined defined term when it names a part other than the breast, else ``None``.

    The value returned is one of :data:`OTHER_PARTS` (a defined term, not free text).
    """
    return header.body_part if header.body_part in OTHER_PARTS else None
