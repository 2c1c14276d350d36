"""What breastflow reads from one DICOM object's header (before any pixel data).

:class:`InstanceHeader` is the small, flat record built from a header-only read
(``stop_before_pixels``) of one file; :class:`FrameInfo` describes each 2D frame
(one per single-frame object, one per frame of an enhanced multi-frame object,
taken from its functional groups). Grouping, classification and geometry
validation all work on these records, so pixel data is touched only once, by
:func:`breastflow.dicom.volume.read_volume`.

Some fields are PHI (``patient_id``, ``acquisition_datetime``, the UIDs). They
exist in memory for grouping, pseudonymisation and time offsets only; nothing
in ``breastflow.dicom`` writes them anywhere (see :mod:`breastflow.deid`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydicom import uid
from pydicom.dataset import Dataset

from breastflow.deid.dates import combine_date_time, parse_dt

#: SOP classes breastflow ingests (grey-level images with a geometry we understand).
SUPPORTED_SOP_CLASSES: frozenset[str] = frozenset({
    uid.MRImageStorage,
    uid.EnhancedMRImageStorage,
    uid.LegacyConvertedEnhancedMRImageStorage,
    uid.CTImageStorage,
    uid.EnhancedCTImageStorage,
    uid.DigitalMammographyXRayImageStorageForPresentation,
    uid.DigitalMammographyXRayImageStorageForProcessing,
    uid.DigitalXRayImageStorageForPresentation,
    uid.DigitalXRayImageStorageForProcessing,
    uid.ComputedRadiographyImageStorage,
})

#: SOP classes whose frames carry their geometry in functional groups.
ENHANCED_SOP_CLASSES: frozenset[str] = frozenset({
    uid.EnhancedMRImageStorage,
    uid.LegacyConvertedEnhancedMRImageStorage,
    uid.EnhancedCTImageStorage,
})

#: Projection (2D X-ray) SOP classes: no patient-space slice positions.
PROJECTION_SOP_CLASSES: frozenset[str] = frozenset({
    uid.DigitalMammographyXRayImageStorageForPresentation,
    uid.DigitalMammographyXRayImageStorageForProcessing,
    uid.DigitalXRayImageStorageForPresentation,
    uid.DigitalXRayImageStorageForProcessing,
    uid.ComputedRadiographyImageStorage,
})


@dataclass(frozen=True)
class FrameInfo:
    """One 2D frame and where it sits in patient space (LPS, millimetres).

    Attributes:
        path: file path/URL holding the frame.
        frame_index: index of the frame inside its file (0 for single-frame).
        position: ImagePositionPatient (x, y, z) of the first transmitted pixel.
        orientation: ImageOrientationPatient (row cosines, column cosines).
        pixel_spacing: (row spacing, column spacing) in mm.
        rescale_slope, rescale_intercept: modality LUT of this frame.
        acquisition_datetime: frame acquisition time (PHI; memory only).
        temporal_position: TemporalPositionIdentifier / index, if any.
        trigger_time_ms: TriggerTime (classic objects; GE/Philips dynamic phases), if any.
    """

    path: str
    frame_index: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    rescale_slope: float
    rescale_intercept: float
    acquisition_datetime: dt.datetime | None
    temporal_position: int | None
    trigger_time_ms: float | None = None


@dataclass(frozen=True)
class InstanceHeader:
    """Header subset of one DICOM object, read without pixel data.

    Attributes:
        path: file path or URL.
        study_uid, series_uid, sop_instance_uid: UIDs (PHI-like; memory only).
        sop_class_uid: SOP Class UID.
        patient_id: raw PatientID (PHI; only for pseudonymisation).
        modality: e.g. ``"MR"``, ``"MG"``.
        transfer_syntax: Transfer Syntax UID.
        series_number, instance_number: may be ``None``.
        series_description: free text hint (PHI-risky: never stored).
        image_type: ImageType values, upper case.
        contrast_agent: ContrastBolusAgent (empty if absent).
        manufacturer, model: vendor and model names.
        field_strength_t: MagneticFieldStrength in tesla.
        echo_time_ms, repetition_time_ms, flip_angle_deg: sequence parameters.
        view_position: mammography ViewPosition (``"CC"``, ``"MLO"`` ...).
        laterality: ImageLaterality/Laterality/FrameLaterality (``"L"``, ``"R"``...).
        rows, columns, n_frames: matrix and frame count.
        samples_per_pixel, photometric, bits_allocated, bits_stored,
            pixel_representation: pixel format.
        slice_thickness_mm, spacing_between_slices_mm: nominal values.
        frames: one :class:`FrameInfo` per frame (geometry, rescale, time).
        n_temporal_positions: NumberOfTemporalPositions (dynamic series), if any.
        mosaic_images: for a Siemens mosaic un-mosaicked at planning
            (:func:`breastflow.dicom.mosaic.unmosaic_header`), the number of tiled
            slices; ``rows``/``columns``/``frames`` then describe one tile each.
        body_part: BodyPartExamined, upper case (a defined term such as ``"BREAST"``).
        protocol_name, study_description: free text hints (PHI-risky: never stored).
        receive_coil: ReceiveCoilName (top level, or the enhanced MR receive coil
            functional group); a hint, never stored.
        diffusion_b_value: DiffusionBValue in s/mm2 (top level, or the enhanced
            MR diffusion functional group), ``None`` if absent.
    """

    path: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    patient_id: str
    modality: str
    transfer_syntax: str
    series_number: int | None
    instance_number: int | None
    series_description: str
    image_type: tuple[str, ...]
    contrast_agent: str
    manufacturer: str
    model: str
    field_strength_t: float | None
    echo_time_ms: float | None
    repetition_time_ms: float | None
    flip_angle_deg: float | None
    view_position: str
    laterality: str
    rows: int
    columns: int
    n_frames: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    slice_thickness_mm: float | None
    spacing_between_slices_mm: float | None
    frames: tuple[FrameInfo, ...]
    n_temporal_positions: int | None = None
    mosaic_images: int | None = None
    body_part: str = ""
    protocol_name: str = ""
    study_description: str = ""
    receive_coil: str = ""
    diffusion_b_value: float | None = None

    @property
    def acquisition_datetime(self) -> dt.datetime | None:
        """Earliest frame acquisition time of this object (PHI; memory only)."""
        times = [f.acquisition_datetime for f in self.frames if f.acquisition_datetime]
        return min(times) if times else None


def _float(value: object) -> float | None:
    try:
        return None if value is None or value == "" else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int | None:
    try:
        return None if value is None or value == "" else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _floats(value: object, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)  # type: ignore[union-attr]
    return str(value).strip()


def _rescale(ds: Dataset | None, keyword: str, default: float) -> float:
    value = _float(ds.get(keyword)) if ds is not None else None
    return default if value is None else value


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq else None


def dataset_acquisition_datetime(ds: Dataset) -> dt.datetime | None:
    """Acquisition time of a dataset: AcquisitionDateTime, else Acquisition
    Date+Time, else Content Date+Time, else Series Date+Time (PHI; memory only)."""
    moment = parse_dt(ds.get("AcquisitionDateTime"))
    if moment is not None:
        return moment
    for date_kw, time_kw in (("AcquisitionDate", "AcquisitionTime"), ("ContentDate", "ContentTime"),
                             ("SeriesDate", "SeriesTime")):
        moment = combine_date_time(ds.get(date_kw) or ds.get("StudyDate"), ds.get(time_kw))
        if moment is not None:
            return moment
    return None


def _frame_from_groups(path: str, index: int, shared: Dataset | None, per_frame: Dataset | None,
                       fallback_time: dt.datetime | None) -> FrameInfo:
    """Build a :class:`FrameInfo` from shared + per-frame functional group items."""

    def item(keyword: str) -> Dataset | None:
        for group in (per_frame, shared):
            if group is not None and keyword in group:
                found = _first_item(group, keyword)
                if found is not None:
                    return found
        return None

    position = item("PlanePositionSequence")
    orientation = item("PlaneOrientationSequence")
    measures = item("PixelMeasuresSequence")
    transform = item("PixelValueTransformationSequence")
    content = item("FrameContentSequence")
    moment = parse_dt(content.get("FrameAcquisitionDateTime")) if content is not None else None
    return FrameInfo(
        path=path,
        frame_index=index,
        position=_floats(position.get("ImagePositionPatient"), 3) if position else None,  # type: ignore[arg-type]
        orientation=_floats(orientation.get("ImageOrientationPatient"), 6) if orientation else None,  # type: ignore[arg-type]
        pixel_spacing=_floats(measures.get("PixelSpacing"), 2) if measures else None,  # type: ignore[arg-type]
        rescale_slope=_rescale(transform, "RescaleSlope", 1.0),
        rescale_intercept=_rescale(transform, "RescaleIntercept", 0.0),
        acquisition_datetime=moment or fallback_time,
        temporal_position=_int(content.get("TemporalPositionIndex")) if content is not None else None,
    )


def frames_of(ds: Dataset, path: str, sop_class_uid: str) -> tuple[FrameInfo, ...]:
    """Per-frame geometry, rescale and time of a dataset (header only is enough)."""
    moment = dataset_acquisition_datetime(ds)
    n_frames = _int(ds.get("NumberOfFrames")) or 1
    if sop_class_uid in ENHANCED_SOP_CLASSES:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        frames = []
        for index in range(n_frames):
            item = per_frame[index] if index < len(per_frame) else None
            frames.append(_frame_from_groups(path, index, shared, item, moment))
        return tuple(frames)
    spacing = _floats(ds.get("PixelSpacing"), 2) or _floats(ds.get("ImagerPixelSpacing"), 2)
    base = {
        "path": path,
        "position": _floats(ds.get("ImagePositionPatient"), 3),
        "orientation": _floats(ds.get("ImageOrientationPatient"), 6),
        "pixel_spacing": spacing,
        "rescale_slope": _rescale(ds, "RescaleSlope", 1.0),
        "rescale_intercept": _rescale(ds, "RescaleIntercept", 0.0),
        "acquisition_datetime": moment,
        "temporal_position": _int(ds.get("TemporalPositionIdentifier")),
        "trigger_time_ms": _float(ds.get("TriggerTime")),
    }
    return tuple(FrameInfo(frame_index=i, **base) for i in range(n_frames))  # type: ignore[arg-type]


def _group_value(ds: Dataset, sop_class_uid: str, sequence: str, keyword: str) -> object:
    """``keyword`` at the top level, else (enhanced objects) in the shared or first
    per-frame functional group's ``sequence`` item."""
    value = ds.get(keyword)
    if value not in (None, "") or sop_class_uid not in ENHANCED_SOP_CLASSES:
        return value
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or [None]
    for group in (_first_item(ds, "SharedFunctionalGroupsSequence"), per_frame[0]):
        found = _first_item(group, sequence) if group is not None else None
        if found is not None and found.get(keyword) not in (None, ""):
            return found.get(keyword)
    return value


def header_from_dataset(ds: Dataset, path: str) -> InstanceHeader:
    """Build an :class:`InstanceHeader` from a (header-only) dataset read from ``path``."""
    meta = getattr(ds, "file_meta", None)
    sop_class = _text(ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else ""))
    laterality = _text(ds.get("ImageLaterality") or ds.get("Laterality") or ds.get("FrameLaterality"))
    return InstanceHeader(
        path=path,
        study_uid=_text(ds.get("StudyInstanceUID")),
        series_uid=_text(ds.get("SeriesInstanceUID")),
        sop_instance_uid=_text(ds.get("SOPInstanceUID")),
        sop_class_uid=sop_class,
        patient_id=_text(ds.get("PatientID")),
        modality=_text(ds.get("Modality")).upper(),
        transfer_syntax=_text(meta.get("TransferSyntaxUID")) if meta else "",
        series_number=_int(ds.get("SeriesNumber")),
        instance_number=_int(ds.get("InstanceNumber")),
        series_description=_text(ds.get("SeriesDescription")),
        image_type=tuple(v.upper() for v in _text(ds.get("ImageType")).split("\\") if v),
        contrast_agent=_text(ds.get("ContrastBolusAgent")),
        manufacturer=_text(ds.get("Manufacturer")),
        model=_text(ds.get("ManufacturerModelName")),
        field_strength_t=_float(ds.get("MagneticFieldStrength")),
        echo_time_ms=_float(ds.get("EchoTime")),
        repetition_time_ms=_float(ds.get("RepetitionTime")),
        flip_angle_deg=_float(ds.get("FlipAngle")),
        view_position=_text(ds.get("ViewPosition")).upper(),
        laterality=laterality.upper(),
        rows=_int(ds.get("Rows")) or 0,
        columns=_int(ds.get("Columns")) or 0,
        n_frames=_int(ds.get("NumberOfFrames")) or 1,
        samples_per_pixel=_int(ds.get("SamplesPerPixel")) or 1,
        photometric=_text(ds.get("PhotometricInterpretation")).upper(),
        bits_allocated=_int(ds.get("BitsAllocated")) or 0,
        bits_stored=_int(ds.get("BitsStored")) or 0,
        pixel_representation=_int(ds.get("PixelRepresentation")) or 0,
        slice_thickness_mm=_float(ds.get("SliceThickness")),
        spacing_between_slices_mm=_float(ds.get("SpacingBetweenSlices")),
        frames=frames_of(ds, path, sop_class),
        n_temporal_positions=_int(ds.get("NumberOfTemporalPositions")),
        body_part=_text(ds.get("BodyPartExamined")).upper(),
        protocol_name=_text(ds.get("ProtocolName")),
        study_description=_text(ds.get("StudyDescription")),
        receive_coil=_text(_group_value(ds, sop_class, "MRReceiveCoilSequence", "ReceiveCoilName")),
        diffusion_b_value=_float(_group_value(ds, sop_class, "MRDiffusionSequence", "DiffusionBValue")),
    )
