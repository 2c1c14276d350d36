"""Build the JSON-able, PHI-free attributes of one series for the store and catalog."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pydicom.uid import UID

from breastflow.deid.dates import seconds_after
from breastflow.deid.profile import KEPT_ATTRIBUTES, PROFILE_NAME
from breastflow.deid.pseudonym import PseudonymKind, check_key, pseudonymise
from breastflow.dicom.classify import ClassifiedSeries
from breastflow.dicom.series import SeriesGroup
from breastflow.dicom.volume import SeriesVolume


def _round(values: object, digits: int = 6) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def deidentify_series_attrs(source: SeriesVolume | SeriesGroup, key: bytes,
                            reference_time: dt.datetime | None,
                            classified: ClassifiedSeries | None = None) -> dict[str, object]:
    """PHI-free attributes of a series (whitelist of :data:`KEPT_ATTRIBUTES` + pseudonyms).

    Args:
        source: the decoded volume (geometry, dtype, rescale included) or just
            the grouped series (header-level attributes only).
        key: pseudonymisation key (see :func:`breastflow.deid.pseudonym.load_key`).
        reference_time: acquisition start of the study's pre-contrast series
            (``ClassifiedSeries.series.acquisition_start`` of the PRE); ``None``
            when the study has none (mammography): no time offset is written.
        classified: the series' classification (role, phase, view, laterality).

    Returns:
        JSON-able dict: ``patient_pseudonym``, ``study_pseudonym``,
        ``series_pseudonym``, ``deidentification`` and the kept attributes.
        No names, IDs, UIDs, dates, institutions or free text.

    Raises:
        PseudonymKeyError: bad key. ValueError: empty patient ID or UID.
    """
    check_key(key)
    volume = source if isinstance(source, SeriesVolume) else None
    series = volume.series if volume is not None else source  # type: ignore[union-attr]
    assert isinstance(series, SeriesGroup)
    header = series.first
    attrs: dict[str, object] = {
        "patient_pseudonym": pseudonymise(series.patient_id, PseudonymKind.PATIENT, key),
        "study_pseudonym": pseudonymise(series.study_uid, PseudonymKind.STUDY, key),
        "series_pseudonym": pseudonymise(series.series_uid, PseudonymKind.SERIES, key),
        "modality": header.modality,
        "sop_class": UID(header.sop_class_uid).name,
        "manufacturer": header.manufacturer,
        "model": header.model,
        "field_strength_t": header.field_strength_t,
        "echo_time_ms": header.echo_time_ms,
        "repetition_time_ms": header.repetition_time_ms,
        "flip_angle_deg": header.flip_angle_deg,
        "slice_thickness_mm": header.slice_thickness_mm,
        "series_number": series.series_number,
        "seconds_after_pre": seconds_after(series.acquisition_start, reference_time),
        "deidentification": {"profile": PROFILE_NAME, "pseudonym": "HMAC-SHA256 (keyed)",
                             "dates": "seconds relative to the pre-contrast acquisition"},
    }
    if classified is not None:
        attrs.update(
            role=classified.role.value,
            phase_index=classified.phase_index,
            classification_reason=classified.reason,
            view=classified.view.value if classified.view else None,
            laterality=classified.laterality.value if classified.laterality else None,
        )
    if volume is not None:
        attrs.update(
            shape=list(volume.array.shape),
            dtype=str(volume.array.dtype),
            spacing_mm=_round(volume.spacing_mm),
            origin_mm=_round(volume.origin_mm, 4),
            direction=_round(volume.direction),
            geometry=volume.geometry.value,
            rescale_slope=volume.rescale_slope,
            rescale_intercept=volume.rescale_intercept,
            rescale_applied=volume.rescale_applied,
            stored_rescale=list(volume.stored_rescale) if volume.stored_rescale else None,
            transfer_syntax=volume.transfer_syntax,
            transfer_syntax_name=" / ".join(UID(t).name for t in volume.transfer_syntaxes),
            photometric=volume.photometric,
            bits_stored=volume.bits_stored,
            n_frames=volume.n_frames,
        )
    allowed = set(KEPT_ATTRIBUTES) | {"patient_pseudonym", "study_pseudonym", "series_pseudonym",
                                      "deidentification"}
    unexpected = set(attrs) - allowed
    if unexpected:  # a programming error: the whitelist is the contract
        raise RuntimeError(f"attributes outside the de-identification whitelist: {sorted(unexpected)}")
    return attrs
