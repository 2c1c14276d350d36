"""Write one four-view full-field digital mammography (FFDM) phantom study.

The study is a bilateral screening exam (LCC, LMLO, RCC, RMLO) stored as
*Digital Mammography X-Ray Image Storage - For Presentation*
(1.2.840.10008.5.1.4.1.1.1.2), one series per view, one image per series.
Anatomy comes from :mod:`breastflow.phantom.mammo_anatomy`, vendor look from
:mod:`breastflow.phantom.mammo_vendors`.

Orientation (DICOM PS3.3 C.8.11.7 / IHE Mammography Image profile): images are
stored as they hang, chest wall on the patient's side of the image, so left
breast views have the chest wall at column 0 and the nipple pointing right,
right breast views are mirrored. ``PatientOrientation`` (row direction, column
direction) is ``A\\R`` (LCC), ``P\\L`` (RCC), ``A\\FR`` (LMLO), ``P\\FL`` (RMLO).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from breastflow.phantom.config import PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.dicom_io import apply_identity, make_uid, save, set_pixels
from breastflow.phantom.mammo_anatomy import BreastShape, draw_breast_shape, draw_density, render_view
from breastflow.phantom.mammo_lesions import LesionKind, LesionSpec, draw_lesions
from breastflow.phantom.mammo_vendors import MAMMO_VENDORS, MammoVendorStyle, Photometric, present
from breastflow.phantom.mammo_views import VIEWS, Density, MammoView
from breastflow.phantom.phi import FakeIdentity, draw_identity
from breastflow.phantom.records import StudyResult
from breastflow.vocabulary import Laterality, ViewPosition

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
TINY_ROWS = 256

# SNOMED codes of DICOM CID 4014 (view) and CID 4013 (region): (SCT code, legacy SRT code, meaning).
# Current DICOM uses SCT; archives written before ~2019 hold the SRT "R-"/"T-" codes.
VIEW_CODES: dict[ViewPosition, tuple[str, str, str]] = {
    ViewPosition.CC: ("399162004", "R-10242", "cranio-caudal"),
    ViewPosition.MLO: ("399368009", "R-10226", "medio-lateral oblique"),
}
BREAST_CODE = ("76752008", "T-04000", "Breast")
PATIENT_ORIENTATION: dict[str, list[str]] = {
    "LCC": ["A", "R"], "RCC": ["P", "L"], "LMLO": ["A", "FR"], "RMLO": ["P", "FL"],
}


def study_id(study_index: int) -> str:
    """Phantom-local, PHI-free study id, e.g. ``"PH0007"``."""
    return f"PH{study_index:04d}"


def vendor_for_study(study_index: int) -> MammoVendorStyle:
    """Vendors cycle with the study index, so any 3 consecutive studies cover all styles."""
    names = MAMMO_VENDORS.names()
    return MAMMO_VENDORS.get(names[study_index % len(names)])


def view_matrix(style: MammoVendorStyle, profile: Profile) -> tuple[tuple[int, int], float]:
    """``((rows, cols), pixel_spacing_mm)`` of a view; tiny keeps the vendor's field of view."""
    if profile is Profile.REALISTIC:
        return style.realistic_shape, style.pixel_spacing_mm
    shape = style.tiny_shape(TINY_ROWS)
    return shape, style.pixel_spacing_mm * style.realistic_shape[0] / shape[0]


def write_mammo_study(out_dir: Path, study_index: int, config: PhantomConfig,
                      syntax: TransferSyntax) -> StudyResult:
    """Write study ``study_index`` of a mammography cohort and return its ground truth.

    Files go to ``out_dir/dicom/<study_id>/<series_number>/0001.dcm`` (series
    1-4 = LCC, LMLO, RCC, RMLO). The study draws everything from
    ``default_rng(SeedSequence([config.seed, study_index]))`` in a fixed order
    (identity, density, both breast outlines, lesions, then the views), so the
    same inputs give byte-identical files.

    Args:
        out_dir: cohort output folder (created if missing).
        study_index: position of the study in the cohort (>= 0).
        config: cohort configuration (seed and profile are used here).
        syntax: transfer syntax of every file of this study.

    Returns:
        The study row (``modality="mammo"``, ``n_images=4``, ``views``,
        ``density``, ``n_lesions`` ...), one lesion row per lesion and view,
        the PHI values written (``phi_values``; per keyword in ``phi``), and ``n_files=4``.

    Raises:
        ValueError: if ``study_index`` is negative.
    """
    if study_index < 0:
        raise ValueError(f"study_index must be >= 0, got {study_index}")
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, study_index]))
    identity = draw_identity(rng, study_index)
    style = vendor_for_study(study_index)
    density = draw_density(rng)
    shapes = {lat: draw_breast_shape(rng) for lat in Laterality}
    lesions = draw_lesions(rng)
    (rows, cols), spacing = view_matrix(style, config.profile)
    sid = study_id(study_index)
    study_uid = make_uid(config.seed, study_index, "mammo-study")
    study_dir = Path(out_dir) / "dicom" / sid

    start = dt.datetime.strptime(identity.StudyTime, "%H%M%S")
    series_times = [(start + dt.timedelta(minutes=2 * n)).strftime("%H%M%S") for n in range(1, 5)]
    lesion_rows: list[dict[str, object]] = []
    for number, view in enumerate(VIEWS, start=1):
        shape = shapes[view.laterality]
        rendered = render_view(view, shape, density, lesions, (rows, cols), spacing, rng)
        pixels = present(rendered.attenuation, rendered.breast, style, rng)
        ds = _view_dataset(view, number, pixels, rendered.breast, style, shape, spacing, identity,
                           study_uid, (config.seed, study_index), series_times[number - 1])
        save(ds, study_dir / str(number) / "0001.dcm", syntax)
        own = [les for les in lesions if les.laterality is view.laterality]
        for lesion_id, (lesion, box) in enumerate(zip(own, rendered.lesion_boxes, strict=True), start=1):
            lesion_rows.append(_lesion_row(sid, lesion_id, lesion, view, number, box))

    row: dict[str, object] = {
        "study_id": sid,
        "modality": "mammo",
        "vendor": style.name,
        "manufacturer": style.manufacturer,
        "model": style.model,
        "field_strength": None,
        "study_instance_uid": study_uid,
        "dicom_dir": f"dicom/{sid}",
        "matrix": f"{rows}x{cols}",
        "n_images": len(VIEWS),
        "views": ";".join(v.name for v in VIEWS),
        "density": density.value,
        "n_lesions": len(lesions),
        "lesion_classes": ";".join(sorted(les.lesion_class.value for les in lesions)),
        "transfer_syntax": syntax.value,
    }
    phi: dict[str, object] = dict(asdict(identity))
    phi.update(AcquisitionDate=identity.StudyDate, SeriesDate=identity.StudyDate,
               ContentDate=identity.StudyDate, SeriesTimes=series_times)
    return StudyResult(study=row, lesions=lesion_rows, phi_values=identity.phi_values(), n_files=len(VIEWS),
                       phi=phi)


def _lesion_row(sid: str, lesion_id: int, lesion: LesionSpec, view: MammoView, series: int,
                box: tuple[int, int, int, int]) -> dict[str, object]:
    return {
        "study_id": sid,
        "lesion_id": lesion_id,
        "class": lesion.lesion_class.value,
        "lesion_kind": lesion.kind.value,
        "side": view.laterality.value,
        "view": view.name,
        "series_number": series,
        "instance_number": 1,
        "size_mm": round(lesion.size_mm, 2),
        "n_calcifications": lesion.n_calcs if lesion.kind is LesionKind.CALCIFICATION else 0,
        "start_row": box[0],
        "end_row": box[1],
        "start_column": box[2],
        "end_column": box[3],
    }


def _snomed(code: tuple[str, str, str], legacy: bool) -> Dataset:
    """A code item from ``(SCT code, SRT code, meaning)``."""
    item = Dataset()
    item.CodeValue = code[1] if legacy else code[0]
    item.CodingSchemeDesignator = "SRT" if legacy else "SCT"
    item.CodeMeaning = code[2]
    return item


def _view_dataset(view: MammoView, number: int, pixels: np.ndarray, breast: np.ndarray,
                  style: MammoVendorStyle, shape: BreastShape, spacing: float, identity: FakeIdentity,
                  study_uid: str, key: tuple[int, int], time: str) -> Dataset:
    """Header of one view: DX/MG For Presentation IOD attributes plus the pixels."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.SOPClassUID = MG_FOR_PRESENTATION
    ds.SOPInstanceUID = make_uid(*key, "mammo-image", number)
    apply_identity(ds, identity)
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = identity.StudyDate
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = style.manufacturer
    ds.ManufacturerModelName = style.model
    ds.SoftwareVersions = style.software
    ds.StudyDescription = "MAMMOGRAM SCREENING BILATERAL"
    ds.SeriesDescription = f"{view.laterality.value} {view.position.value}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = make_uid(*key, "mammo-series", number)
    ds.SeriesNumber = number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1
    ds.ImageLaterality = view.laterality.value
    ds.PatientOrientation = PATIENT_ORIENTATION[view.name]
    ds.ViewPosition = view.position.value
    ds.BodyPartExamined = "BREAST"
    ds.OrganExposed = "BREAST"
    ds.AnatomicRegionSequence = Sequence([_snomed(BREAST_CODE, style.legacy_codes)])
    code = _snomed(VIEW_CODES[view.position], style.legacy_codes)
    code.ViewModifierCodeSequence = Sequence([])
    ds.ViewCodeSequence = Sequence([code])
    ds.AcquisitionContextSequence = Sequence([])
    ds.BreastImplantPresent = "NO"
    ds.PartialView = "NO"
    ds.PositionerType = "MAMMOGRAPHIC"
    mlo_angle = 45 if view.laterality is Laterality.LEFT else -45
    ds.PositionerPrimaryAngle = 0 if view.position is ViewPosition.CC else mlo_angle
    ds.DistanceSourceToDetector = style.source_detector_mm
    ds.DistanceSourceToPatient = round(style.source_detector_mm - 20.0 - shape.thickness_mm, 1)
    ds.BodyPartThickness = round(shape.thickness_mm)
    ds.CompressionForce = round(shape.force_n)
    ds.KVP = round(style.kvp_at_50mm + 0.15 * (shape.thickness_mm - 50.0))
    ds.ExposureTime = int(400 + 12 * shape.thickness_mm)
    ds.XRayTubeCurrent = 120
    ds.Exposure = int(ds.ExposureTime * ds.XRayTubeCurrent / 1000)
    ds.AnodeTargetMaterial = style.anode
    ds.FilterMaterial = style.filter_material
    ds.DetectorType = style.detector_type
    ds.ImagerPixelSpacing = [round(spacing, 6)] * 2
    ds.PixelSpacing = [round(spacing, 6)] * 2
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    ds.PixelSpacingCalibrationDescription = "Same as imager pixel spacing (contact, no magnification)"
    set_pixels(ds, pixels, style.bits_stored)
    monochrome1 = style.photometric is Photometric.MONOCHROME1
    ds.PhotometricInterpretation = style.photometric.value
    ds.PresentationLUTShape = "INVERSE" if monochrome1 else "IDENTITY"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1 if monochrome1 else -1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    centre, width = _window(pixels, breast)
    ds.WindowCenter, ds.WindowWidth = centre, width
    ds.WindowCenterWidthExplanation = "BREAST"
    return ds


def _window(pixels: np.ndarray, breast: np.ndarray) -> tuple[int, int]:
    """Window covering the 1st-99th percentile of breast pixels (every 4th row/column)."""
    sample = pixels[::4, ::4][breast[::4, ::4]]
    if sample.size == 0:
        sample = pixels.ravel()
    lo, hi = (float(v) for v in np.percentile(sample, [1.0, 99.0]))
    return int(round((lo + hi) / 2.0)), max(int(round(hi - lo)), 2)


__all__ = ["Density", "study_id", "vendor_for_study", "view_matrix", "write_mammo_study"]
