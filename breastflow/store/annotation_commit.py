"""Commit markers of study annotations: lesion boxes (and a label mask) visible iff the marker exists.

A study's annotations are written after its images: the mask array
``studies/<study>/masks/lesions`` and the boxes in the study group's
attributes, then verified, then committed by one atomic write of
``annotations/<study>.json`` (:func:`breastflow.store.layout.annotation_marker`).
The marker holds the whole PHI-free record, so the catalog can project it
without opening any Zarr group.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from breastflow.store import layout
from breastflow.store.commit import read_markers
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes

#: Name of the lesion label mask under ``studies/<study>/masks/``.
LESION_MASK = "lesions"


class LesionBox(BaseModel):
    """One lesion's bounding box, inclusive and 0-based, in the stored array of ``series``.

    Attributes:
        lesion_id: label of the lesion in the mask (1-based).
        series: store name of the series whose grid the box indexes (``pre``
            for DCE-MRI, ``mg_r_cc`` ... for a mammography view).
        start_row, end_row: along the array's Y axis (DICOM rows).
        start_column, end_column: along X (DICOM columns).
        start_slice, end_slice: along Z (slices sorted along the slice normal);
            ``None`` for projection images (mammography).
        lesion_class: ``benign``/``malignant`` when given; curve_type: BI-RADS
            kinetic curve (``persistent``/``plateau``/``washout``) when given;
            kind: e.g. ``mass``/``calcification`` when given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lesion_id: int = Field(ge=1, le=255)
    series: str
    start_row: int = Field(ge=0)
    end_row: int = Field(ge=0)
    start_column: int = Field(ge=0)
    end_column: int = Field(ge=0)
    start_slice: int | None = Field(default=None, ge=0)
    end_slice: int | None = Field(default=None, ge=0)
    lesion_class: str | None = None
    curve_type: str | None = None
    kind: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LesionBox:
        layout.check_name(self.series, "annotated series")
        pairs = [("row", self.start_row, self.end_row), ("column", self.start_column, self.end_column)]
        if (self.start_slice is None) != (self.end_slice is None):
            raise ValueError(f"lesion {self.lesion_id}: start_slice and end_slice must both be given or both empty")
        if self.start_slice is not None:
            pairs.append(("slice", self.start_slice, self.end_slice))  # type: ignore[arg-type]
        for axis, start, end in pairs:
            if start > end:
                raise ValueError(f"lesion {self.lesion_id}: start_{axis} {start} > end_{axis} {end}")
        return self

    def bounds_zyx(self) -> tuple[tuple[int, int], ...]:
        """Inclusive ``(start, end)`` per array axis: ``(Z, Y, X)`` (3D) or ``(Y, X)`` (projection)."""
        rows, cols = (self.start_row, self.end_row), (self.start_column, self.end_column)
        if self.start_slice is None:
            return (rows, cols)
        return ((self.start_slice, self.end_slice), rows, cols)  # type: ignore[return-value]

    def array_index(self) -> tuple[slice, ...]:
        """The box as a half-open numpy index (``stop = end + 1``) over :meth:`bounds_zyx`'s axes.

        The one conversion from the store's inclusive boxes to half-open ranges,
        e.g. ``volume[box.array_index()]`` is the box's voxels.
        """
        return tuple(slice(start, end + 1) for start, end in self.bounds_zyx())


class AnnotationRecord(BaseModel):
    """The PHI-free record of a study's committed annotations.

    Attributes:
        study, patient: pseudonyms.
        source_format: ``phantom`` or ``duke-table``.
        boxes: every lesion box (several per lesion for mammography: one per view).
        n_lesions: distinct lesion ids; lesion_classes: their classes in id order.
        has_mask: whether ``masks/lesions`` holds a label mask on the pre-contrast grid.
        mask_series: the series whose grid the mask shares (``pre``).
        mask_shape, mask_hash, mask_labels: shape ``(Z, Y, X)``, content hash and
            non-zero labels of the stored mask.
        image_fingerprints: source fingerprint of each annotated series at commit time.
        source_fingerprint: keyed digest of the annotation content and those images
            (a re-run with the same digest skips the study).
        breastflow_version: version that wrote it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    study: str
    patient: str
    source_format: str
    boxes: tuple[LesionBox, ...] = ()
    n_lesions: int = Field(ge=0)
    lesion_classes: tuple[str | None, ...] = ()
    has_mask: bool = False
    mask_series: str | None = None
    mask_shape: tuple[int, int, int] | None = None
    mask_hash: str | None = None
    mask_labels: tuple[int, ...] = ()
    image_fingerprints: dict[str, str] = Field(default_factory=dict)
    source_fingerprint: str
    breastflow_version: str


def write_annotation_commit(loc: StoreLocation, record: AnnotationRecord) -> None:
    """Commit a study's verified annotations by writing their marker atomically."""
    payload = record.model_dump_json(indent=1).encode()
    atomic_write_bytes(loc, layout.annotation_marker(record.study), payload)


def read_annotation_commit(loc: StoreLocation, study: str) -> AnnotationRecord | None:
    """The annotation marker of a study, or ``None`` when none is committed."""
    try:
        return AnnotationRecord.model_validate_json(read_bytes(loc, layout.annotation_marker(study)))
    except FileNotFoundError:
        return None


def remove_annotation_commit(loc: StoreLocation, study: str) -> None:
    """Un-commit a study's annotations (before rewriting them)."""
    fs = loc.filesystem()
    path = loc.fs_path(layout.annotation_marker(study))
    if fs.exists(path):
        fs.rm_file(path)


def read_annotation_commits(loc: StoreLocation) -> list[AnnotationRecord]:
    """Every committed annotation record, sorted by study.

    Raises:
        ValueError: a marker is corrupt (names the object).
    """
    records = read_markers(loc, layout.ANNOTATIONS, AnnotationRecord, "annotation")
    return sorted(records, key=lambda r: r.study)
