"""A tiny DCE phantom store written straight through the store API (no DICOM, no Dask: ~0.1 s a study).

Each study: a bright ellipse of "tissue" in air, a lesion box that enhances
more with every post-contrast phase than the tissue around it, optional label
mask and annotation record, a chosen rescale still to apply, committed series
and a rebuilt catalog - the same objects ingest writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from breastflow.store.annotation_commit import (
    LESION_MASK,
    AnnotationRecord,
    LesionBox,
    write_annotation_commit,
)
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.commit import SeriesRecord, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split, SplitConfig, split_of
from breastflow.store.zarr_io import ArrayLayout, Geometry, write_mask, write_series

GEOMETRY = Geometry(spacing_mm=(2.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0),
                    direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
SPLITS = SplitConfig(seed=0)
LAYOUT = ArrayLayout(shard_slices=4)
PHASES = ("pre", "post_1", "post_2", "post_3")


@dataclass(frozen=True)
class PhantomStudy:
    """One study to write. ``box`` is inclusive ``(z0, z1, y0, y1, x0, x1)`` or ``None`` (not annotated)."""

    study: str
    patient: str
    shape: tuple[int, int, int] = (20, 24, 24)
    dtype: str = "uint16"
    phases: tuple[str, ...] = PHASES
    slope: float = 1.0
    intercept: float = 0.0
    box: tuple[int, int, int, int, int, int] | None = (8, 11, 8, 13, 9, 14)
    seed: int = 0
    tissue: float = 600.0
    boost: dict[str, float] = field(default_factory=dict)


def physical_volumes(s: PhantomStudy) -> dict[str, np.ndarray]:
    """Physical (rescaled) float volumes of every phase: tissue enhances 5 % a phase, the lesion 40 %."""
    rng = np.random.default_rng(s.seed)
    z, y, x = s.shape
    yy, xx = np.mgrid[0:y, 0:x]
    body = ((yy - y / 2) / (0.45 * y)) ** 2 + ((xx - x / 2) / (0.45 * x)) ** 2 < 1
    base = np.where(body[None], s.tissue, 5.0) * np.ones((z, 1, 1))
    base = base + rng.normal(0, 0.05 * s.tissue, size=base.shape) * body[None]
    lesion = np.zeros(s.shape, bool)
    if s.box is not None:
        z0, z1, y0, y1, x0, x1 = s.box
        lesion[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] = True
    out = {}
    for k, phase in enumerate(s.phases):
        gain = np.where(lesion, 1.0 + 0.4 * k, 1.0 + 0.05 * k) * (1.0 + s.boost.get(phase, 0.0))
        out[phase] = np.clip(base * gain, 0, None)
    return out


def raw_volumes(s: PhantomStudy) -> dict[str, np.ndarray]:
    """Stored raw volumes: ``(physical - intercept) / slope`` rounded into the study's dtype."""
    info = np.iinfo(s.dtype)
    return {p: np.clip(np.round((v - s.intercept) / s.slope), info.min, info.max).astype(s.dtype)
            for p, v in physical_volumes(s).items()}


def write_study(loc: StoreLocation, s: PhantomStudy) -> dict[str, np.ndarray]:
    """Write, commit and annotate one study; returns its raw volumes."""
    volumes = raw_volumes(s)
    for k, (phase, volume) in enumerate(volumes.items()):
        attrs = {"study": s.study, "patient": s.patient, "series": phase, "phase_index": k,
                 "rescale_slope": s.slope, "rescale_intercept": s.intercept}
        written = write_series(loc, s.study, phase, volume, GEOMETRY, attrs, LAYOUT)
        write_commit(loc, SeriesRecord(
            study=s.study, patient=s.patient, series=phase, source_series=f"src-{s.study}-{phase}",
            modality="MR", vendor="phantom", model="p1", field_strength_t=1.5, phase_index=k,
            phase_offset_s=90.0 * k, shape=written.shape, dtype=written.dtype, spacing_mm=GEOMETRY.spacing_mm,
            content_hash=written.content_hash, source_fingerprint=f"fp-{s.seed}", n_source_files=s.shape[0],
            source_bytes=int(volume.nbytes), breastflow_version="test"))
    if s.box is not None:
        z0, z1, y0, y1, x0, x1 = s.box
        labels = np.zeros(s.shape, np.uint8)
        labels[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] = 1
        written = write_mask(loc, s.study, LESION_MASK, labels, GEOMETRY, {}, LAYOUT)
        box = LesionBox(lesion_id=1, series="pre", start_slice=z0, end_slice=z1, start_row=y0, end_row=y1,
                        start_column=x0, end_column=x1, lesion_class="malignant")
        write_annotation_commit(loc, AnnotationRecord(
            study=s.study, patient=s.patient, source_format="phantom", boxes=(box,), n_lesions=1,
            lesion_classes=("malignant",), has_mask=True, mask_series="pre", mask_shape=s.shape,
            mask_hash=written.content_hash, mask_labels=(1,), source_fingerprint=f"ann-{s.seed}",
            breastflow_version="test"))
    return volumes


def patients(split: Split, n: int, prefix: str = "pat") -> list[str]:
    """The first ``n`` pseudonyms ``<prefix>-<i>`` that the store's split seed puts in ``split``."""
    found, i = [], 0
    while len(found) < n:
        name = f"{prefix}-{i}"
        if split_of(name, SPLITS) is split:
            found.append(name)
        i += 1
    return found


def build_store(url: str, studies: list[PhantomStudy]) -> StoreLocation:
    """Write every study and rebuild the catalog."""
    loc = StoreLocation.from_url(url)
    for s in studies:
        write_study(loc, s)
    rebuild_catalog(loc, SPLITS)
    return loc
