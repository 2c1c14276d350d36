"""Breast-aware classification: evidence codes, brain/DTI series under --accept breast|any, no-pre messages."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from dicom_series import WrittenSeries, write_series

from breastflow.dicom.breast_evidence import Evidence, text_names_breast
from breastflow.dicom.classify import AcceptPolicy, SeriesRole, classify_study
from breastflow.dicom.discover import discover, probe_headers
from breastflow.dicom.errors import NoPreContrast
from breastflow.dicom.series import group_series, group_studies


def _edit(written: WrittenSeries, **attrs: object) -> WrittenSeries:
    """Set (value) or delete (None) attributes in every file of a written series."""
    for path in written.paths:
        ds = pydicom.dcmread(path)
        for keyword, value in attrs.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        ds.save_as(path)
    return written


def _study(folder: Path):
    headers, problems = probe_headers(discover(str(folder)))
    assert problems == []
    (study,) = group_studies(group_series(headers))
    return study


def _brain_mprage(folder: Path, body_part: str | None = "HEAD", **extra: object) -> WrittenSeries:
    """A Siemens-XA/Philips-like brain MPRAGE: a temporal position on a non-dynamic series."""
    written = write_series(folder, series="mprage", number=2, description="t1_mprage_sag",
                           acquisition_time="101500", echo_time=2.3, repetition_time=2300.0, seed=3)
    return _edit(written, BodyPartExamined=body_part, TemporalPositionIdentifier=1,
                 StudyDescription="MR Schaedel nativ", ProtocolName="t1_mprage_sag", ReceiveCoilName="Head_32",
                 **extra)


@pytest.mark.parametrize("body_part", ["HEAD", None])
def test_brain_mprage_with_temporal_position_is_not_pre_under_breast(tmp_path: Path, body_part: str | None) -> None:
    _brain_mprage(tmp_path, body_part)
    (item,) = classify_study(_study(tmp_path))  # no breast evidence: ignored, not NoPreContrast
    assert item.role is SeriesRole.UNKNOWN and item.evidence == ()
    expected = "BodyPartExamined HEAD names another body part" if body_part else "no breast evidence"
    assert expected in item.reason


def test_brain_mprage_is_stored_by_timing_under_any(tmp_path: Path) -> None:
    _brain_mprage(tmp_path)
    (item,) = classify_study(_study(tmp_path), AcceptPolicy.ANY)
    assert item.role is SeriesRole.PRE and item.name == "pre" and item.evidence == ()


def test_brain_pre_and_post_gadolinium_with_body_part_head_are_not_a_dce(tmp_path: Path) -> None:
    """A post-contrast MPRAGE with a 'post' hint and agent does not make a brain study breast."""
    _brain_mprage(tmp_path)
    post = write_series(tmp_path, series="mprage-gd", number=3, description="t1_mprage_sag_post",
                        acquisition_time="102500", contrast_agent="GADOVIST", seed=4)
    _edit(post, BodyPartExamined="HEAD", TemporalPositionIdentifier=1)
    classified = classify_study(_study(tmp_path))
    assert [c.role for c in classified] == [SeriesRole.UNKNOWN, SeriesRole.UNKNOWN]


@pytest.mark.parametrize("how", [{"ImageType": ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]},
                                 {"DiffusionBValue": 1000.0}, {"SeriesDescription": "DTI_high_iso"}])
def test_dti_is_never_t2(tmp_path: Path, how: dict) -> None:
    """Philips DTI: long TE and TR looked T2-weighted; diffusion headers now exclude it."""
    written = write_series(tmp_path, series="dti", number=5, description="reg - sshEPI",
                           echo_time=88.0, repetition_time=7500.0, seed=5)
    _edit(written, BodyPartExamined="BREAST", TemporalPositionIdentifier=1, **how)
    pre = write_series(tmp_path, series="pre", number=6, description="ax dyn pre", acquisition_time="101600",
                       seed=6)
    _edit(pre, BodyPartExamined="BREAST")
    for accept in AcceptPolicy:
        dti, pre_item = classify_study(_study(tmp_path), accept)
        assert dti.role is SeriesRole.UNKNOWN and "diffusion" in dti.reason, accept
        assert pre_item.role is SeriesRole.PRE


def test_pre_contrast_only_breast_study_is_stored_with_its_evidence(tmp_path: Path) -> None:
    written = write_series(tmp_path, series="pre", description="T1 FL3D AX", seed=7)
    _edit(written, BodyPartExamined="BREAST", TemporalPositionIdentifier=1, ReceiveCoilName="BreastMatrix")
    (item,) = classify_study(_study(tmp_path))
    assert item.role is SeriesRole.PRE
    assert item.evidence == (Evidence.BODY_PART.value, Evidence.RECEIVE_COIL.value)


@pytest.mark.parametrize(("keyword", "value", "code"), [
    ("StudyDescription", "MR Mamma beidseits", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "IRM DES SEINS", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "RM MAMA BILATERAL", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "MRI Brust", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "MR borsten", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "RM seno bilaterale", Evidence.STUDY_DESCRIPTION),
    ("StudyDescription", "MR bryst", Evidence.STUDY_DESCRIPTION),
    ("ProtocolName", "BREAST DCE", Evidence.PROTOCOL_NAME),
    ("ReceiveCoilName", "8HRBREAST", Evidence.RECEIVE_COIL),
    ("BodyPartExamined", "BREAST", Evidence.BODY_PART),
])
def test_each_kind_of_evidence_alone_makes_a_pre(tmp_path: Path, keyword: str, value: str, code: Evidence) -> None:
    written = write_series(tmp_path, series="pre", description="t1_fl3d_tra", seed=8)
    _edit(written, TemporalPositionIdentifier=1, **{keyword: value})
    (item,) = classify_study(_study(tmp_path))
    assert item.role is SeriesRole.PRE and item.evidence == (code.value,)


def test_bilateral_axial_field_of_view_is_evidence(tmp_path: Path) -> None:
    written = write_series(tmp_path, series="pre", description="t1_fl3d_tra", rows=8, columns=10, seed=9)
    _edit(written, TemporalPositionIdentifier=1, PixelSpacing=[25.0, 34.0])  # 340 mm L-R x 200 mm A-P
    (item,) = classify_study(_study(tmp_path))
    assert item.role is SeriesRole.PRE and item.evidence == (Evidence.BILATERAL_AXIAL_FOV.value,)


@pytest.mark.parametrize("text", ["MR Schaedel", "IRM cerebrale", "t1_mprage_sag", "SENSE-Head-8", "Einstein"])
def test_non_breast_words_are_not_evidence(text: str) -> None:
    assert not text_names_breast(text)


def test_no_pre_message_counts_what_was_seen(tmp_path: Path) -> None:
    for k, (time, description) in enumerate((("090130", "ax dyn 1st pass"), ("090300", "ax dyn 2nd pass"),
                                              ("090430", "ax dyn 3rd pass"))):
        write_series(tmp_path, series=f"s{k}", number=k + 1, description=description, acquisition_time=time,
                     contrast_agent="GADAVIST" if k < 2 else None, seed=k)
    with pytest.raises(NoPreContrast) as info:
        classify_study(_study(tmp_path))
    assert ("3 MR series: 3 dynamic candidates (2 with contrast agent, 1 with a post-contrast hint)"
            in info.value.message)


def test_no_pre_message_with_zero_candidates_says_why(tmp_path: Path) -> None:
    t2 = write_series(tmp_path, series="t2", number=1, description="Ax T2 FSE", echo_time=90.0,
                      repetition_time=4000.0, seed=1)
    loc = write_series(tmp_path, series="loc", number=2, description="3pl loc", seed=2)
    for written in (t2, loc):
        _edit(written, BodyPartExamined="BREAST")
    with pytest.raises(NoPreContrast) as info:
        classify_study(_study(tmp_path))
    message = info.value.message
    assert "2 MR series: 0 dynamic candidates; not candidates: 1 T2, 1 localizer" in message
    assert "all with contrast agent or post-contrast hints" not in message


@pytest.mark.parametrize("implicit", [False, True])
def test_fast_scanner_reads_the_evidence_fields_as_pydicom(tmp_path: Path, implicit: bool) -> None:
    from breastflow.dicom.fast_header import scan_header
    from breastflow.dicom.header import header_from_dataset

    written = write_series(tmp_path, series="pre", description="ax dyn pre", n_slices=1, seed=10)
    _edit(written, BodyPartExamined="BREAST", ProtocolName="BREAST DCE", StudyDescription="MRI BREAST BILATERAL",
          ReceiveCoilName="8HRBREAST", DiffusionBValue=800.0)
    path = written.paths[0]
    if implicit:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True, force_encoding=True)
    with open(path, "rb") as handle:
        scanned = scan_header(handle, str(path))
    assert scanned is not None
    reference = header_from_dataset(pydicom.dcmread(path, stop_before_pixels=True), str(path))
    assert scanned.header == reference
    assert (reference.body_part, reference.protocol_name, reference.study_description, reference.receive_coil,
            reference.diffusion_b_value) == ("BREAST", "BREAST DCE", "MRI BREAST BILATERAL", "8HRBREAST", 800.0)


def test_enhanced_objects_give_coil_and_b_value_from_functional_groups() -> None:
    from pydicom.dataset import Dataset

    from breastflow.dicom.header import header_from_dataset

    coil, diffusion, shared = Dataset(), Dataset(), Dataset()
    coil.ReceiveCoilName = "Breast 16ch"
    diffusion.DiffusionBValue = 600.0
    shared.MRReceiveCoilSequence = [coil]
    ds = Dataset()
    ds.SOPClassUID = pydicom.uid.EnhancedMRImageStorage
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = Dataset()
    per_frame.MRDiffusionSequence = [diffusion]
    ds.PerFrameFunctionalGroupsSequence = [per_frame]
    ds.NumberOfFrames = 1
    header = header_from_dataset(ds, "enhanced.dcm")
    assert header.receive_coil == "Breast 16ch" and header.diffusion_b_value == 600.0


def test_any_keeps_series_that_fit_no_role_as_other(tmp_path: Path) -> None:
    write_series(tmp_path, series="a", number=1, description="sequence a", acquisition_time="100000", seed=1)
    write_series(tmp_path, series="b", number=3, description="sequence b", acquisition_time="100200", n_slices=4,
                 seed=2)
    study = _study(tmp_path)
    assert [c.role for c in classify_study(study)] == [SeriesRole.UNKNOWN, SeriesRole.UNKNOWN]
    first, second = classify_study(study, AcceptPolicy.ANY)
    assert (first.name, second.name, second.role) == ("pre", "mr_3", SeriesRole.OTHER)
    assert second.seconds_after_pre == 120.0
