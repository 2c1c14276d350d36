"""Lesion annotations beside the DICOM: read them, match them to studies, store them with the images.

Two sources are understood (:class:`AnnotationFormat`):

* ``phantom`` - the layout ``breastflow phantom`` writes: ``cohort.csv``
  (``study_instance_uid`` per ``study_id``), ``lesions.csv`` (boxes, class,
  curve type; mammography rows name their ``view``) and
  ``truth/<study_id>_lesion_mask.nii.gz`` (labels on the pre-contrast grid).
  Studies are matched by **StudyInstanceUID** from ``cohort.csv``, never by
  folder name.
* ``duke-table`` - a Duke-Breast-Cancer-MRI-style table (CSV or XLSX) with
  columns ``Patient ID, Start Row, End Row, Start Column, End Column,
  Start Slice, End Slice`` (one row per lesion). Rows are matched by
  **PatientID** in memory only: the IDs are PHI and never reach the store,
  the report or a worker. A patient with several studies in one batch is
  ambiguous and quarantined.

Box convention: inclusive, 0-based (``index_base=1`` for 1-based tables);
slices index the pre-contrast series sorted along the slice normal, which
is exactly the stored array's Z axis. Masks are validated against the
*stored* pre-contrast grid (:mod:`breastflow.ingest.mask_grid`), boxes must
lie inside the stored arrays, and a mask's labels must sit inside their
boxes. A bad annotation is quarantined with an :class:`AnnotationReason`;
the images land regardless.

Storing the annotations beside the images is
:mod:`breastflow.ingest.annotation_job` (a worker task after the series).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from breastflow.store.annotation_commit import LesionBox

COHORT_CSV = "cohort.csv"
LESIONS_CSV = "lesions.csv"
PRE_SERIES = "pre"
DUKE_COLUMNS = ("patient_id", "start_row", "end_row", "start_column", "end_column", "start_slice", "end_slice")


class AnnotationFormat(str, Enum):
    """Where the annotations come from."""

    PHANTOM = "phantom"
    DUKE_TABLE = "duke-table"


class AnnotationReason(str, Enum):
    """Why a study's annotation was quarantined (its images land regardless)."""

    UNREADABLE = "annotation-unreadable"  # mask file missing or not NIfTI
    INVALID = "annotation-invalid"  # a row with missing/non-integer/inverted bounds
    AMBIGUOUS = "annotation-ambiguous"  # one table patient, several studies in the batch
    NO_IMAGE = "annotation-no-image"  # the annotated series is not in the store
    GRID_MISMATCH = "annotation-grid-mismatch"  # mask not on the pre-contrast grid
    BOX_OUTSIDE = "annotation-box-outside"  # a box exceeds the stored array
    BOX_MASK_MISMATCH = "annotation-box-mismatch"  # mask labels outside their boxes, or unboxed


class AnnotationError(Exception):
    """A study's annotation cannot be stored (never quotes identifiers)."""

    def __init__(self, reason: AnnotationReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class AnnotationOptions(BaseModel):
    """Where an ingest run finds annotations.

    Attributes:
        path: a phantom folder (holding ``cohort.csv`` and ``lesions.csv``) or a
            Duke-style table (``.csv``/``.xlsx``); local or any fsspec URL.
        auto_detect: without ``path``, use the phantom layout when SOURCE is a
            folder named ``dicom`` whose parent holds ``cohort.csv`` and ``lesions.csv``.
        index_base: first index of the table's bounds (0, or 1 for 1-based tables).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str | None = None
    auto_detect: bool = True
    index_base: int = Field(default=0, ge=0, le=1)


@dataclass(frozen=True)
class StudyAnnotation:
    """The annotations of one study (PHI-free apart from being matched in memory).

    Attributes:
        boxes: lesion boxes (validated shape, not yet against the images).
        mask_url: NIfTI label mask on the pre-contrast grid, if any.
        where: operator-facing locator (file and row/study id; never a PatientID).
        problem: why the rows are unusable (then the study's annotation is quarantined).
    """

    boxes: tuple[LesionBox, ...]
    mask_url: str | None
    where: str
    problem: str | None = None

    @property
    def series(self) -> tuple[str, ...]:
        """Store names of the series the annotation refers to (sorted)."""
        names = {b.series for b in self.boxes} | ({PRE_SERIES} if self.mask_url else set())
        return tuple(sorted(names))


@dataclass
class AnnotationSource:
    """Annotations loaded for one run; raw UIDs/PatientIDs live in memory only.

    Attributes:
        format: the source format; location: its URL (operator view only).
        by_study_uid: phantom annotations keyed by StudyInstanceUID.
        by_patient_id: table annotations keyed by PatientID (PHI).
        storage_options: fsspec options to read masks.
    """

    format: AnnotationFormat
    location: str
    by_study_uid: dict[str, StudyAnnotation] = field(default_factory=dict)
    by_patient_id: dict[str, StudyAnnotation] = field(default_factory=dict, repr=False)
    storage_options: dict | None = None

    def match(self, study_uid: str, patient_id: str) -> StudyAnnotation | None:
        """The annotation of a study, by StudyInstanceUID (phantom) or PatientID (table)."""
        if self.format is AnnotationFormat.PHANTOM:
            return self.by_study_uid.get(study_uid)
        return self.by_patient_id.get(patient_id)


def _fs(url: str, storage_options: dict | None):  # noqa: ANN202 - fsspec filesystem
    import fsspec

    return fsspec.core.url_to_fs(url, **(storage_options or {}))


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def detect_annotation_source(source: str, storage_options: dict | None = None) -> str | None:
    """The phantom folder of ``source`` when ``source`` is ``<phantom>/dicom``, else ``None``.

    Rule: the last path component of SOURCE is ``dicom`` and its parent holds both
    ``cohort.csv`` and ``lesions.csv``.
    """
    trimmed = source.rstrip("/")
    head, _, name = trimmed.rpartition("/")
    if name != "dicom" or not head:
        return None
    fs, parent = _fs(head, storage_options)
    if fs.isfile(_join(parent, COHORT_CSV)) and fs.isfile(_join(parent, LESIONS_CSV)):
        return head
    return None


def load_annotation_source(options: AnnotationOptions, source: str,
                           storage_options: dict | None = None) -> AnnotationSource | None:
    """Load the run's annotations per ``options`` (``None`` when there are none).

    Raises:
        FileNotFoundError: ``options.path`` does not exist.
        ValueError: the path is neither a phantom folder nor a readable table,
            or the table lacks required columns.
    """
    path = options.path
    if path is None:
        path = detect_annotation_source(source, storage_options) if options.auto_detect else None
        if path is None:
            return None
    fs, fs_path = _fs(path, storage_options)
    if not fs.exists(fs_path):
        raise FileNotFoundError(f"annotations {path} do not exist")
    if fs.isdir(fs_path):
        if not fs.isfile(_join(fs_path, COHORT_CSV)):
            raise ValueError(f"annotations folder {path} has no {COHORT_CSV}: expected a phantom layout "
                             f"({COHORT_CSV}, {LESIONS_CSV}, truth/) or a .csv/.xlsx table")
        return read_phantom_annotations(path, storage_options)
    return read_annotation_table(path, storage_options, options.index_base)


def _read_frame(url: str, storage_options: dict | None, dtype: dict | None = None) -> pd.DataFrame:
    fs, fs_path = _fs(url, storage_options)
    data = fs.cat_file(fs_path)
    if url.lower().endswith((".xlsx", ".xlsm", ".xls")):
        return pd.read_excel(io.BytesIO(data), dtype=dtype)
    return pd.read_csv(io.BytesIO(data), dtype=dtype, keep_default_na=True)


def _optional_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    return str(value).strip()


def _mammo_series(view: str) -> str:
    """``RCC`` -> ``mg_r_cc`` (the classifier's role name for that view)."""
    view = view.strip().upper()
    if len(view) < 3 or view[0] not in "LR" or view[1:] not in ("CC", "MLO"):
        raise ValueError(f"view {view!r} is not one of LCC, LMLO, RCC, RMLO")
    return f"mg_{view[0].lower()}_{view[1:].lower()}"


def _box(row: pd.Series, lesion_id: int, series: str, base: int, with_slices: bool) -> LesionBox:
    def bound(name: str) -> int | None:
        value = row.get(name)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return None
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"{name} {value!r} is not a whole number")
        return int(number) - base

    bounds = {name: bound(name) for name in DUKE_COLUMNS[1:5]}
    missing = [name for name, value in bounds.items() if value is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    slices = (bound("start_slice"), bound("end_slice")) if with_slices else (None, None)
    return LesionBox(lesion_id=lesion_id, series=series, **bounds,  # type: ignore[arg-type]
                     start_slice=slices[0], end_slice=slices[1],
                     lesion_class=_optional_text(row.get("class")), curve_type=_optional_text(row.get("curve_type")),
                     kind=_optional_text(row.get("lesion_kind")))


def read_phantom_annotations(root: str, storage_options: dict | None = None) -> AnnotationSource:
    """Read a phantom layout's ``cohort.csv``/``lesions.csv`` (+ mask paths) keyed by StudyInstanceUID.

    Raises:
        ValueError: ``cohort.csv`` lacks ``study_id``/``study_instance_uid``.
    """
    cohort = _read_frame(_join(root, COHORT_CSV), storage_options, dtype={"study_instance_uid": str, "study_id": str})
    lesions = _read_frame(_join(root, LESIONS_CSV), storage_options, dtype={"study_id": str})
    for column in ("study_id", "study_instance_uid"):
        if column not in cohort.columns:
            raise ValueError(f"{_join(root, COHORT_CSV)} has no {column!r} column; is it a phantom cohort table?")
    source = AnnotationSource(AnnotationFormat.PHANTOM, root, storage_options=storage_options)
    rows_by_study = {sid: group for sid, group in lesions.groupby("study_id")} if len(lesions) else {}
    for _, study in cohort.iterrows():
        sid = str(study["study_id"])
        where = f"{_join(root, LESIONS_CSV)} study {sid}"
        mask = _optional_text(study.get("mask_path"))
        boxes, problem = [], None
        mammo = str(study.get("modality", "mri")).strip().lower() == "mammo"
        for _, row in rows_by_study.get(sid, pd.DataFrame()).iterrows():
            try:
                series = _mammo_series(str(row["view"])) if mammo else PRE_SERIES
                boxes.append(_box(row, int(row["lesion_id"]), series, 0, not mammo))
            except (ValueError, KeyError) as err:
                problem = f"lesion row of study {sid}: {err}"
                break
        source.by_study_uid[str(study["study_instance_uid"])] = StudyAnnotation(
            boxes=tuple(boxes), mask_url=_join(root, mask) if mask else None, where=where, problem=problem)
    return source


def read_annotation_table(url: str, storage_options: dict | None = None, index_base: int = 0) -> AnnotationSource:
    """Read a Duke-style table (one row per lesion) keyed by PatientID (kept in memory only).

    Column names are matched case-insensitively with spaces as underscores
    (``Patient ID`` = ``patient_id``). Lesion ids are 1, 2 ... in row order per patient.

    Raises:
        ValueError: required columns are missing.
    """
    frame = _read_frame(url, storage_options)
    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    missing = [c for c in DUKE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"annotation table {url} lacks column(s) {', '.join(missing)}; expected "
                         "Patient ID, Start Row, End Row, Start Column, End Column, Start Slice, End Slice")
    source = AnnotationSource(AnnotationFormat.DUKE_TABLE, url, storage_options=storage_options)
    for patient_id, rows in frame.groupby(frame["patient_id"].astype(str).str.strip(), sort=False):
        lines = [int(i) + 2 for i in rows.index]  # 1-based file lines (header = line 1)
        where = f"{url} line(s) {', '.join(map(str, lines))}"
        boxes, problem = [], None
        for lesion_id, (_, row) in enumerate(rows.iterrows(), start=1):
            try:
                boxes.append(_box(row, lesion_id, PRE_SERIES, index_base, True))
            except ValueError as err:
                problem = f"line {lines[lesion_id - 1]}: {err}"
                break
        source.by_patient_id[str(patient_id)] = StudyAnnotation(tuple(boxes), None, where, problem)
    return source


def annotation_digest(annotation: StudyAnnotation, storage_options: dict | None = None) -> str:
    """SHA-256 of the annotation's content (boxes and mask bytes), for incremental re-runs.

    Raises:
        AnnotationError: ``UNREADABLE`` when the mask file cannot be read.
    """
    digest = hashlib.sha256(json.dumps([b.model_dump(mode="json") for b in annotation.boxes],
                                       sort_keys=True).encode())
    if annotation.mask_url:
        digest.update(_read_mask_bytes(annotation.mask_url, storage_options))
    return digest.hexdigest()


def _read_mask_bytes(url: str, storage_options: dict | None) -> bytes:
    try:
        fs, path = _fs(url, storage_options)
        return fs.cat_file(path)
    except (FileNotFoundError, OSError) as err:
        raise AnnotationError(AnnotationReason.UNREADABLE,
                              f"cannot read the lesion mask ({type(err).__name__})") from err


def read_nifti(url: str, storage_options: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI-1/2 (optionally gzipped) file from any fsspec URL.

    Returns:
        ``(data (I, J, K), affine to RAS (4, 4))``.

    Raises:
        AnnotationError: ``UNREADABLE`` if missing or not NIfTI.
    """
    import nibabel as nib

    raw = _read_mask_bytes(url, storage_options)
    try:
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        image = nib.Nifti1Image.from_bytes(raw)
        return np.asarray(image.dataobj), np.asarray(image.affine, dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - any parse failure means "not a readable NIfTI"
        raise AnnotationError(AnnotationReason.UNREADABLE,
                              f"lesion mask is not a readable NIfTI file ({type(err).__name__})") from err
