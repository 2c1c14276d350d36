"""Store one study's annotations beside its committed images (runs on a Dask worker, after the series).

The job carries PHI-free data only (pseudonyms, boxes, the mask's URL). The
task reads the *stored* grid of the annotated series, validates the boxes
(inside the arrays) and the mask (on the pre-contrast grid,
:mod:`breastflow.ingest.mask_grid`; labels inside their boxes), writes the mask
to ``studies/<study>/masks/lesions`` (uint8, same chunking) and the boxes to the
study group's ``annotations`` attribute, reads the mask back and compares its
hash, and writes the study's annotation marker last
(:mod:`breastflow.store.annotation_commit`). A bad annotation comes back as a
quarantined outcome; storage errors propagate for the caller's retries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow import __version__
from breastflow.ingest.annotations import PRE_SERIES, AnnotationError, AnnotationReason, read_nifti
from breastflow.ingest.mask_grid import MaskGridMismatch, StoredGrid, mask_to_grid
from breastflow.ingest.report import ANNOTATION_ENTRY, Outcome, SeriesOutcome
from breastflow.store import layout
from breastflow.store.annotation_commit import (
    LESION_MASK,
    AnnotationRecord,
    LesionBox,
    remove_annotation_commit,
    write_annotation_commit,
)
from breastflow.store.commit import read_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import ArrayLayout, Geometry, open_root, series_attrs, volume_hash, write_mask


@dataclass(frozen=True)
class AnnotationJob:
    """One study's annotations to validate against its stored images, write and commit (PHI-free).

    Attributes:
        study, patient: pseudonyms.
        boxes: lesion boxes; mask_url: NIfTI mask (on the pre-contrast grid) or ``None``.
        image_fingerprints: source fingerprint of every annotated series as planned.
        source_format: ``phantom`` / ``duke-table``.
        fingerprint: keyed digest of the content and images (skip when unchanged).
        where, where_ref: operator locator and its keyed reference.
    """

    study: str
    patient: str
    boxes: tuple[LesionBox, ...]
    mask_url: str | None
    image_fingerprints: dict[str, str]
    source_format: str
    fingerprint: str
    where: str
    where_ref: str
    series: str = ANNOTATION_ENTRY

    @property
    def key(self) -> str:
        """Dask/Prefect key (PHI-free)."""
        return f"annotate-{self.study}"


def quarantined(job: AnnotationJob, err: AnnotationError) -> SeriesOutcome:
    """The report entry of a rejected annotation."""
    return SeriesOutcome(outcome=Outcome.QUARANTINED, study=job.study, series=ANNOTATION_ENTRY,
                         reason=err.reason.value, where=job.where, where_ref=job.where_ref, message=err.message)


def _stored_grids(job: AnnotationJob, loc: StoreLocation) -> dict[str, StoredGrid]:
    grids = {}
    for name, fingerprint in sorted(job.image_fingerprints.items()):
        record = read_commit(loc, job.study, name)
        if record is None or record.source_fingerprint != fingerprint:
            raise AnnotationError(AnnotationReason.NO_IMAGE,
                                  f"series {name} of this study is not in the store (quarantined or failed); "
                                  "its annotation is stored once the images land (next run)")
        grids[name] = StoredGrid.from_attrs(series_attrs(loc, job.study, name)["breastflow"])
    return grids


def check_boxes(boxes: tuple[LesionBox, ...], grids: dict[str, StoredGrid]) -> None:
    """Every box lies inside its series' stored array.

    Raises:
        AnnotationError: ``BOX_OUTSIDE``, or ``INVALID`` for a 2-D box on a volume (or vice versa).
    """
    for box in boxes:
        shape = grids[box.series].shape
        bounds = box.bounds_zyx()
        if len(bounds) == 2:
            if shape[0] != 1:
                raise AnnotationError(AnnotationReason.INVALID, f"lesion {box.lesion_id}: a box without slices "
                                      f"on the {shape[0]}-slice series {box.series}")
            shape = shape[1:]
        for axis, (start, end), size in zip("ZYX"[3 - len(bounds):], bounds, shape, strict=True):
            if end >= size:
                raise AnnotationError(AnnotationReason.BOX_OUTSIDE,
                                      f"lesion {box.lesion_id}: {axis} bounds {start}..{end} exceed series "
                                      f"{box.series} of shape (Z, Y, X) {list(grids[box.series].shape)}")


def check_mask_boxes(labels: np.ndarray, boxes: tuple[LesionBox, ...]) -> tuple[int, ...]:
    """Each non-zero label has a box on the mask's series and lies inside it; returns the labels.

    Args:
        labels: ``(Z, Y, X)`` uint8 mask on the pre-contrast grid.
        boxes: the study's boxes (only those on ``pre`` are compared).

    Raises:
        AnnotationError: ``BOX_MASK_MISMATCH``.
    """
    present = tuple(int(v) for v in np.unique(labels) if v)
    own = {b.lesion_id: b for b in boxes if b.series == PRE_SERIES}
    if not own:
        return present
    unboxed = sorted(set(present) - set(own))
    empty = sorted(set(own) - set(present))
    if unboxed or empty:
        raise AnnotationError(AnnotationReason.BOX_MASK_MISMATCH,
                              f"mask labels {unboxed} have no box and boxes {empty} have no mask voxel")
    for lesion_id, box in own.items():
        coords = np.nonzero(labels == lesion_id)
        for axis, (start, end), values in zip("ZYX", box.bounds_zyx(), coords, strict=True):
            low, high = int(values.min()), int(values.max())
            if low < start or high > end:
                raise AnnotationError(AnnotationReason.BOX_MASK_MISMATCH,
                                      f"lesion {lesion_id}: mask spans {axis} {low}..{high}, box {start}..{end} "
                                      "(slice order or axis convention differs between mask and table?)")
    return present


def _stored_mask_hash(loc: StoreLocation, study: str) -> str:
    import zarr

    array = zarr.open_array(loc.join(layout.mask_group(study, LESION_MASK), layout.FULL_RESOLUTION), mode="r",
                            storage_options=loc.storage_options or None, zarr_format=3)
    step = int(array.shards[0]) if array.shards else int(array.chunks[0])
    return volume_hash((array[i:i + step] for i in range(0, array.shape[0], step)), array.shape, array.dtype)


def ingest_annotation(job: AnnotationJob, loc: StoreLocation, array_layout: ArrayLayout = ArrayLayout(),
                      storage_options: dict | None = None) -> SeriesOutcome:
    """Validate a study's annotations against its stored images, write them, verify, commit.

    Args:
        job: from planning (:func:`breastflow.ingest.plan.plan_ingest`).
        loc: the store (the annotated series must be committed).
        array_layout: chunking/sharding/compression of the mask.
        storage_options: fsspec options to read the mask.

    Returns:
        ``NEW`` when committed; ``QUARANTINED`` with an :class:`AnnotationReason`.

    Raises:
        OSError, ConnectionError, VerificationError: storage problems (transient; retry).
    """
    from breastflow.ingest.series import VerificationError

    try:
        grids = _stored_grids(job, loc)
        check_boxes(job.boxes, grids)
        labels, present = None, ()
        if job.mask_url:
            data, affine = read_nifti(job.mask_url, storage_options)
            try:
                labels = mask_to_grid(data, affine, grids[PRE_SERIES])
            except MaskGridMismatch as err:
                raise AnnotationError(AnnotationReason.GRID_MISMATCH, str(err)) from err
            except ValueError as err:
                raise AnnotationError(AnnotationReason.UNREADABLE, str(err)) from err
            present = check_mask_boxes(labels, job.boxes)
    except AnnotationError as err:
        return quarantined(job, err)
    boxes = [b.model_dump(mode="json") for b in job.boxes]
    classes = {b.lesion_id: b.lesion_class for b in job.boxes}
    remove_annotation_commit(loc, job.study)
    written = None
    if labels is not None:
        grid = grids[PRE_SERIES]
        geometry = Geometry(spacing_mm=grid.spacing_mm, origin_mm=grid.origin_mm, direction=grid.direction)
        attrs = {"study": job.study, "patient": job.patient, "mask": LESION_MASK, "grid_of": PRE_SERIES,
                 "labels": list(present), "boxes": boxes, "source_format": job.source_format}
        written = write_mask(loc, job.study, LESION_MASK, labels, geometry, attrs, array_layout)
        if _stored_mask_hash(loc, job.study) != written.content_hash:
            raise VerificationError(f"mask {job.study}/{LESION_MASK}: stored labels differ from the source")
    record = AnnotationRecord(
        study=job.study, patient=job.patient, source_format=job.source_format, boxes=job.boxes,
        n_lesions=len(classes), lesion_classes=tuple(classes[k] for k in sorted(classes)),
        has_mask=written is not None, mask_series=PRE_SERIES if written else None,
        mask_shape=written.shape if written else None, mask_hash=written.content_hash if written else None,
        mask_labels=present, image_fingerprints=job.image_fingerprints, source_fingerprint=job.fingerprint,
        breastflow_version=__version__)
    group = open_root(loc).require_group(layout.study_group(job.study))
    group.attrs["annotations"] = record.model_dump(mode="json", exclude={"image_fingerprints", "source_fingerprint"})
    write_annotation_commit(loc, record)
    return SeriesOutcome(outcome=Outcome.NEW, study=job.study, series=ANNOTATION_ENTRY, where=job.where,
                         where_ref=job.where_ref, n_slices=written.shape[0] if written else 0)
