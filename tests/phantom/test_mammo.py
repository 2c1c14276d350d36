"""Tests of the four-view FFDM phantom (breastflow.phantom.mammo and its parts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dciodvfy_path import DCIODVFY
from scipy import ndimage, stats
from skimage.filters import threshold_otsu

from breastflow.phantom.config import (
    LesionClass,
    PhantomConfig,
    Profile,
    TransferSyntax,
)
from breastflow.phantom.mammo import (
    MG_FOR_PRESENTATION,
    PATIENT_ORIENTATION,
    VIEW_CODES,
    vendor_for_study,
    view_matrix,
    write_mammo_study,
)
from breastflow.phantom.mammo_anatomy import draw_breast_shape, render_view
from breastflow.phantom.mammo_lesions import LesionKind, LesionSpec
from breastflow.phantom.mammo_vendors import MAMMO_VENDORS, present
from breastflow.phantom.mammo_views import VIEWS, Density, Laterality, ViewPosition
from breastflow.registry import RegistryError

# (keyword, DICOM type) of the DX/MG For Presentation IOD attributes we must write
# (PS3.3 A.26/A.27: General Study/Series, DX Series/Anatomy/Image/Detector,
# Mammography Image, VOI LUT, Acquisition Context, SOP Common).
TYPE1 = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "PresentationIntentType", "ImageType", "ImageLaterality", "AnatomicRegionSequence",
    "ViewCodeSequence", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelIntensityRelationship",
    "PixelIntensityRelationshipSign", "RescaleIntercept", "RescaleSlope", "RescaleType",
    "PresentationLUTShape", "LossyImageCompression", "BurnedInAnnotation", "ImagerPixelSpacing",
    "PositionerType", "OrganExposed", "WindowCenter", "WindowWidth", "PixelData",
)
TYPE2 = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber", "SeriesNumber", "Manufacturer",
    "InstanceNumber", "PatientOrientation", "ContentDate", "ContentTime", "DetectorType",
    "AcquisitionContextSequence",
)
ASKED = ("ViewPosition", "BodyPartExamined", "PixelSpacing", "BreastImplantPresent", "KVP",
         "ExposureTime", "BodyPartThickness", "CompressionForce", "ManufacturerModelName",
         "AcquisitionDate")
VENDOR_INDEX = {vendor_for_study(i).name: i for i in range(len(MAMMO_VENDORS))}


def _config(seed: int = 11, profile: Profile = Profile.TINY) -> PhantomConfig:
    return PhantomConfig(studies=3, seed=seed, profile=profile, modality="mammo")


def _files(root: Path, study_id: str) -> list[Path]:
    return sorted((root / "dicom" / study_id).rglob("*.dcm"))


def _display(ds: pydicom.Dataset) -> np.ndarray:
    """Pixel values as displayed (MONOCHROME1 inverted), float."""
    px = ds.pixel_array.astype(np.float64)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        px = (1 << ds.BitsStored) - 1 - px
    return px


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Studies 0-2 (one per vendor style), tiny, explicit VR little endian."""
    root = tmp_path_factory.mktemp("mammo")
    results = [write_mammo_study(root, i, _config(), TransferSyntax.EXPLICIT_LE) for i in range(3)]
    return root, results


def test_study_row_and_files(cohort: tuple[Path, list]) -> None:
    root, results = cohort
    assert {r.study["vendor"] for r in results} == set(MAMMO_VENDORS.names())
    for i, result in enumerate(results):
        row = result.study
        assert row["study_id"] == f"PH{i:04d}" and row["modality"] == "mammo"
        assert row["field_strength"] is None and row["n_images"] == 4 and result.n_files == 4
        assert row["views"] == "LCC;LMLO;RCC;RMLO" and row["density"] in "ABCD"
        assert row["n_lesions"] == len({les["lesion_id"] for les in result.lesions})
        files = _files(root, row["study_id"])
        assert [f.relative_to(root).as_posix() for f in files] == [
            f"{row['dicom_dir']}/{n}/0001.dcm" for n in range(1, 5)]
        assert all(not any(v in f.as_posix() for v in result.phi_values) for f in files)
        for f in files:
            ds = pydicom.dcmread(f)
            assert ds.StudyInstanceUID == row["study_instance_uid"]
            assert f"{ds.Rows}x{ds.Columns}" == row["matrix"]
            assert str(ds.PatientName) in result.phi_values
            assert ds.ContentTime in result.phi["SeriesTimes"] and ds.StudyDate == result.phi["StudyDate"]
            assert ds.PatientID == result.phi["PatientID"]
            assert ds.AcquisitionDate == result.phi["AcquisitionDate"]


def test_required_mg_attributes(cohort: tuple[Path, list]) -> None:
    root, results = cohort
    for result in results:
        for f in _files(root, result.study["study_id"]):
            ds = pydicom.dcmread(f)
            missing = [k for k in TYPE1 if k not in ds or ds[k].value in (None, "", [])]
            missing += [k for k in TYPE2 + ASKED if k not in ds]
            assert not missing, f"{f}: missing {missing}"
            assert ds.SOPClassUID == MG_FOR_PRESENTATION == ds.file_meta.MediaStorageSOPClassUID
            assert (ds.Modality, ds.PresentationIntentType) == ("MG", "FOR PRESENTATION")
            assert ds.BodyPartExamined == "BREAST" and ds.BreastImplantPresent == "NO"
            assert 12 <= ds.BitsStored <= 16 and ds.HighBit == ds.BitsStored - 1
            assert int(ds.pixel_array.max()) < (1 << ds.BitsStored)
            lut = {"MONOCHROME1": "INVERSE", "MONOCHROME2": "IDENTITY"}[ds.PhotometricInterpretation]
            assert ds.PresentationLUTShape == lut
            view = ds.ViewCodeSequence[0]
            sct, srt, meaning = VIEW_CODES[ViewPosition(ds.ViewPosition)]
            assert (view.CodeValue, view.CodingSchemeDesignator) in {(sct, "SCT"), (srt, "SRT")}
            assert view.CodeMeaning == meaning and "ViewModifierCodeSequence" in view
            assert ds.SeriesDescription == f"{ds.ImageLaterality} {ds.ViewPosition}"


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools dciodvfy not installed")
def test_dciodvfy_reports_no_errors(cohort: tuple[Path, list]) -> None:
    root, results = cohort
    for result in results:
        for f in _files(root, result.study["study_id"]):
            out = subprocess.run([DCIODVFY, str(f)], capture_output=True, text=True, timeout=60)
            report = out.stdout + out.stderr
            assert "MammographyImageForPresentation" in report
            errors = [line for line in report.splitlines() if line.startswith("Error")]
            assert not errors, f"{f}: {errors}"


def test_laterality_orientation_and_pectoral(cohort: tuple[Path, list]) -> None:
    root, results = cohort
    for result in results:
        for f in _files(root, result.study["study_id"]):
            ds = pydicom.dcmread(f)
            name = f"{ds.ImageLaterality}{ds.ViewPosition}"
            assert list(ds.PatientOrientation) == PATIENT_ORIENTATION[name]
            img = _display(ds)
            breast = img > img.min() + 0.05 * np.ptp(img)
            cols = ds.Columns
            centroid = np.nonzero(breast)[1].mean()
            wall = 0 if ds.ImageLaterality == "L" else cols - 1
            assert (centroid < cols / 2) == (ds.ImageLaterality == "L"), name
            assert breast[:, wall].mean() > 0.4, f"{name}: chest wall not on column {wall}"
            assert breast[:, cols - 1 - wall].mean() == 0.0, f"{name}: breast touches the far side"
            k = max(cols // 16, 4)
            corner = img[:k, :k] if wall == 0 else img[:k, -k:]
            if ds.ViewPosition == "MLO":  # muscle: bright, in the upper chest-wall corner only
                assert corner.mean() > np.median(img[breast]), name
                far = img[:k, -k:] if wall == 0 else img[:k, :k]
                assert not (far > img.min() + 0.05 * np.ptp(img)).any(), name
            else:
                assert not (corner > img.min() + 0.05 * np.ptp(img)).any(), f"{name}: CC corner not air"


def test_density_category_tracks_measured_dense_fraction() -> None:
    style = MAMMO_VENDORS.get("ge")
    matrix, spacing = view_matrix(style, Profile.TINY)
    images, truth, categories = [], [], []
    for code, density in enumerate(Density):
        for seed in range(4):
            rng = np.random.default_rng([seed, code])
            rendered = render_view(VIEWS[0], draw_breast_shape(rng), density, [], matrix, spacing, rng)
            img = present(rendered.attenuation, rendered.breast, style, rng).astype(np.float64)
            interior = ndimage.binary_erosion(img > 0, iterations=12)
            images.append(img[interior])
            truth.append(rendered.dense_fraction)
            categories.append(code)
            assert abs(rendered.dense_fraction - density.dense_fraction) < 0.15
    level = threshold_otsu(np.concatenate(images))
    measured = np.array([(pix > level).mean() for pix in images])
    means = [measured[np.array(categories) == c].mean() for c in range(4)]
    assert np.all(np.diff(means) > 0), means
    assert stats.spearmanr(categories, measured).statistic > 0.8
    assert stats.pearsonr(truth, measured).statistic > 0.8


def test_vendor_styles_differ_as_designed() -> None:
    rng = np.random.default_rng(5)
    shape = draw_breast_shape(rng)
    summary = {}
    for name in ("ge", "hologic", "siemens"):
        style = MAMMO_VENDORS.get(name)
        matrix, spacing = view_matrix(style, Profile.TINY)
        rendered = render_view(VIEWS[0], shape, Density.B, [], matrix, spacing, np.random.default_rng(9))
        pixels = present(rendered.attenuation, rendered.breast, style, np.random.default_rng(9))
        shown = pixels.astype(np.float64)
        if name == "siemens":
            assert (pixels[~rendered.breast] == style.max_value).all()  # MONOCHROME1: air stored high
            shown = style.max_value - shown
        inside = shown[rendered.breast] / style.max_value
        summary[name] = (int(pixels.max()), inside.mean(), stats.skew(inside))
    assert summary["ge"][0] < 4096 < summary["hologic"][0] < 16384
    assert abs(summary["ge"][1] - summary["hologic"][1]) > 0.05
    assert abs(summary["ge"][2] - summary["hologic"][2]) > 0.2


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for run in ("a", "b"):
        write_mammo_study(tmp_path / run, 1, _config(seed=3), TransferSyntax.EXPLICIT_LE)
    write_mammo_study(tmp_path / "c", 1, _config(seed=4), TransferSyntax.EXPLICIT_LE)
    a, b, c = (_files(tmp_path / run, "PH0001") for run in "abc")
    assert len(a) == 4
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    assert all(not np.array_equal(pydicom.dcmread(x).pixel_array, pydicom.dcmread(z).pixel_array)
               for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize("syntax", [s for s in TransferSyntax if s is not TransferSyntax.EXPLICIT_LE])
def test_compressed_syntaxes_decode_to_explicit_pixels(tmp_path: Path, syntax: TransferSyntax) -> None:
    for index in range(3):  # every vendor style: 12/14 bit, MONOCHROME1/2
        plain = write_mammo_study(tmp_path / "le", index, _config(), TransferSyntax.EXPLICIT_LE)
        packed = write_mammo_study(tmp_path / syntax.value, index, _config(), syntax)
        assert packed.study["transfer_syntax"] == syntax.value
        assert plain.study["study_instance_uid"] == packed.study["study_instance_uid"]
        sid = plain.study["study_id"]
        pairs = zip(_files(tmp_path / "le", sid), _files(tmp_path / syntax.value, sid), strict=True)
        for x, y in pairs:
            ds = pydicom.dcmread(y)
            assert ds.file_meta.TransferSyntaxUID == syntax.uid
            assert np.array_equal(pydicom.dcmread(x).pixel_array, ds.pixel_array)


def test_lesions_are_recorded_consistently_across_views(tmp_path: Path) -> None:
    config = PhantomConfig(studies=40, seed=2, modality="mammo")
    found = 0
    for index in range(40):
        result = write_mammo_study(tmp_path, index, config, TransferSyntax.EXPLICIT_LE)
        if not result.lesions:
            continue
        found += 1
        assert len(result.lesions) == 2 * result.study["n_lesions"]
        assert {row["view"] for row in result.lesions} == {f"{result.lesions[0]['side']}{p}"
                                                           for p in ("CC", "MLO")}
        assert result.study["lesion_classes"] == result.lesions[0]["class"]
        for row in result.lesions:
            series_dir = tmp_path / "dicom" / row["study_id"] / str(row["series_number"])
            ds = pydicom.dcmread(series_dir / "0001.dcm")
            assert ds.ImageLaterality == row["side"]
            assert 0 <= row["start_row"] <= row["end_row"] < ds.Rows
            assert 0 <= row["start_column"] <= row["end_column"] < ds.Columns
            img = _display(ds)
            box = img[row["start_row"]:row["end_row"] + 1, row["start_column"]:row["end_column"] + 1]
            assert (box > img.min()).mean() > 0.9, "lesion box outside the breast"
        if found == 3:
            break
    assert found >= 1


@pytest.mark.parametrize("lesion_class", list(LesionClass))
def test_mass_raises_attenuation_in_its_box(lesion_class: LesionClass) -> None:
    mass = LesionSpec(LesionKind.MASS, lesion_class, Laterality.RIGHT, 0.5, 0.0, 0.3, 16.0, 0)
    style = MAMMO_VENDORS.get("hologic")
    matrix, spacing = view_matrix(style, Profile.TINY)
    rng = np.random.default_rng(0)
    shape = draw_breast_shape(rng)
    with_mass = render_view(VIEWS[2], shape, Density.A, [mass], matrix, spacing, np.random.default_rng(1))
    without = render_view(VIEWS[2], shape, Density.A, [], matrix, spacing, np.random.default_rng(1))
    (r0, r1, c0, c1), = with_mass.lesion_boxes
    assert c0 > matrix[1] // 3, "right-breast lesion should sit right of the nipple side"
    gain = with_mass.attenuation - without.attenuation
    assert gain[r0:r1 + 1, c0:c1 + 1].sum() > 0.95 * gain.sum() > 0


def test_bad_inputs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="study_index"):
        write_mammo_study(tmp_path, -1, _config(), TransferSyntax.EXPLICIT_LE)
    with pytest.raises(ValueError, match="portrait"):
        render_view(VIEWS[0], draw_breast_shape(np.random.default_rng(0)), Density.B, [], (200, 256), 0.8,
                    np.random.default_rng(0))
    with pytest.raises(RegistryError, match="hologic"):
        MAMMO_VENDORS.get("hologik")


@pytest.mark.slow
@pytest.mark.parametrize("vendor", ["ge", "hologic", "siemens"])
def test_realistic_profile_matrix_and_spacing(tmp_path: Path, vendor: str) -> None:
    index = VENDOR_INDEX[vendor]
    style = MAMMO_VENDORS.get(vendor)
    config = _config(profile=Profile.REALISTIC)
    result = write_mammo_study(tmp_path, index, config, TransferSyntax.EXPLICIT_LE)
    rows, cols = style.realistic_shape
    assert result.study["matrix"] == f"{rows}x{cols}"
    for f in _files(tmp_path, result.study["study_id"]):
        ds = pydicom.dcmread(f)
        assert (ds.Rows, ds.Columns, ds.BitsStored) == (rows, cols, style.bits_stored)
        assert 0.06 <= float(ds.ImagerPixelSpacing[0]) <= 0.1
        img = _display(ds)
        assert (img > img.min()).mean() > 0.25  # the breast fills a good part of the detector
