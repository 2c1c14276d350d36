"""The de-identification profile: DICOM PS3.15 Annex E, applied as a whitelist.

breastflow never copies DICOM headers into the store. It builds a small set of
attributes from a **whitelist** of technical fields (:data:`KEPT_ATTRIBUTES`);
anything not on it is dropped, so a new or private tag can never leak by
omission. :data:`PHI_ACTIONS` documents, for the identifying attributes of the
Annex E Basic Application Level Confidentiality Profile (Table E.1-1) that
scanner files carry, what happens to each one; tests check that none of them
reaches the output. The table below is mirrored in ``docs/ingest_reading.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum


class Action(str, Enum):
    """What happens to an attribute (PS3.15 Table E.1-1 action codes in brackets)."""

    REMOVE = "remove"  # X / Z / D: not written at all (we write nothing we do not whitelist)
    PSEUDONYMISE = "pseudonymise"  # replaced by a keyed HMAC pseudonym
    REPLACE_UID = "replace-uid"  # U: replaced by a keyed pseudonym of the UID
    OFFSET = "offset"  # dates/times: kept only as seconds relative to the pre-contrast acquisition
    KEEP = "keep"  # technical attribute on the whitelist


#: Identifying attributes (DICOM keywords) and their fate. Not exhaustive of
#: Table E.1-1 (the whitelist is what guarantees removal); it lists what scanner
#: files commonly carry so the documentation and leak tests can name them.
PHI_ACTIONS: dict[str, Action] = {
    "PatientName": Action.REMOVE,
    "PatientID": Action.PSEUDONYMISE,
    "OtherPatientIDs": Action.REMOVE,
    "OtherPatientIDsSequence": Action.REMOVE,
    "IssuerOfPatientID": Action.REMOVE,
    "PatientBirthDate": Action.REMOVE,
    "PatientBirthTime": Action.REMOVE,
    "PatientSex": Action.REMOVE,
    "PatientAge": Action.REMOVE,
    "PatientSize": Action.REMOVE,
    "PatientWeight": Action.REMOVE,
    "PatientAddress": Action.REMOVE,
    "PatientTelephoneNumbers": Action.REMOVE,
    "PatientMotherBirthName": Action.REMOVE,
    "EthnicGroup": Action.REMOVE,
    "MilitaryRank": Action.REMOVE,
    "AdditionalPatientHistory": Action.REMOVE,
    "PatientComments": Action.REMOVE,
    "AccessionNumber": Action.REMOVE,
    "StudyID": Action.REMOVE,
    "StudyDescription": Action.REMOVE,
    "SeriesDescription": Action.REMOVE,
    "ProtocolName": Action.REMOVE,
    "ImageComments": Action.REMOVE,
    "RequestAttributesSequence": Action.REMOVE,
    "InstitutionName": Action.REMOVE,
    "InstitutionAddress": Action.REMOVE,
    "InstitutionalDepartmentName": Action.REMOVE,
    "ReferringPhysicianName": Action.REMOVE,
    "ReferringPhysicianAddress": Action.REMOVE,
    "PerformingPhysicianName": Action.REMOVE,
    "NameOfPhysiciansReadingStudy": Action.REMOVE,
    "OperatorsName": Action.REMOVE,
    "PhysiciansOfRecord": Action.REMOVE,
    "StationName": Action.REMOVE,
    "DeviceSerialNumber": Action.REMOVE,
    "StudyInstanceUID": Action.REPLACE_UID,
    "SeriesInstanceUID": Action.REPLACE_UID,
    "SOPInstanceUID": Action.REMOVE,
    "FrameOfReferenceUID": Action.REMOVE,
    "StudyDate": Action.REMOVE,
    "StudyTime": Action.REMOVE,
    "SeriesDate": Action.OFFSET,
    "SeriesTime": Action.OFFSET,
    "AcquisitionDate": Action.OFFSET,
    "AcquisitionTime": Action.OFFSET,
    "AcquisitionDateTime": Action.OFFSET,
    "ContentDate": Action.OFFSET,
    "ContentTime": Action.OFFSET,
    "FrameAcquisitionDateTime": Action.OFFSET,
    "InstanceCreationDate": Action.REMOVE,
    "InstanceCreationTime": Action.REMOVE,
    "ContrastBolusAgent": Action.REMOVE,
    "(private tags)": Action.REMOVE,
}

#: Output attribute -> DICOM source it is derived from. Only these keys (plus
#: the pseudonyms and offsets above) ever leave :mod:`breastflow.deid`.
KEPT_ATTRIBUTES: dict[str, str] = {
    "modality": "Modality",
    "sop_class": "SOPClassUID (name of the standard class)",
    "manufacturer": "Manufacturer",
    "model": "ManufacturerModelName",
    "field_strength_t": "MagneticFieldStrength",
    "echo_time_ms": "EchoTime",
    "repetition_time_ms": "RepetitionTime",
    "flip_angle_deg": "FlipAngle",
    "slice_thickness_mm": "SliceThickness",
    "series_number": "SeriesNumber",
    "view": "ViewPosition (CC/MLO only)",
    "laterality": "ImageLaterality (L/R only)",
    "role": "classification (pre/post/t2/mammo/unknown)",
    "phase_index": "classification",
    "classification_reason": "classification (fixed PHI-free text)",
    "seconds_after_pre": "acquisition time - pre-contrast acquisition time",
    "shape": "Rows, Columns, frame count",
    "dtype": "stored integer dtype",
    "spacing_mm": "measured slice step, PixelSpacing",
    "origin_mm": "ImagePositionPatient of the first slice",
    "direction": "ImageOrientationPatient and slice normal",
    "geometry": "volume or projection",
    "rescale_slope": "RescaleSlope (left to apply)",
    "rescale_intercept": "RescaleIntercept (left to apply)",
    "rescale_applied": "rescale policy",
    "stored_rescale": "RescaleSlope/RescaleIntercept as found",
    "transfer_syntax": "TransferSyntaxUID (standard UIDs)",
    "transfer_syntax_name": "TransferSyntaxUID name",
    "photometric": "PhotometricInterpretation",
    "bits_stored": "BitsStored",
    "n_frames": "frame count",
}

PROFILE_NAME = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile (whitelist)"


def find_phi(value: object, phi_values: Iterable[str]) -> list[str]:
    """PHI strings that occur (case-insensitively, as substrings) anywhere in ``value``.

    ``value`` may be nested dicts/lists/tuples of scalars; everything is
    rendered with ``str``. Dates ``YYYYMMDD`` among ``phi_values`` are also
    searched as ``YYYY-MM-DD`` and ``YYYY/MM/DD``.

    Returns:
        The PHI strings found (empty: clean).
    """
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(k)
                walk(v)
        elif isinstance(node, (list, tuple, set, frozenset)):
            for item in node:
                walk(item)
        else:
            texts.append(str(node).upper())

    walk(value)
    blob = "\n".join(texts)
    found = []
    for phi in phi_values:
        variants = {phi.upper()}
        if len(phi) == 8 and phi.isdigit():
            variants |= {f"{phi[:4]}-{phi[4:6]}-{phi[6:]}", f"{phi[:4]}/{phi[4:6]}/{phi[6:]}"}
        if any(v and v in blob for v in variants):
            found.append(phi)
    return found
