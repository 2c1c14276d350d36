"""Helpers of the segmentation tests: a tiny two-vendor store with lesion masks, multifocal cases and a synthetic set.

Built with tests/data's builder (which writes the lesion mask and annotation
commit of every study with a ``box``); vendors and multifocal masks are then
set the way ingest would record them (commit markers, ``masks/lesions`` with
labels 1 and 2, an annotation record with two boxes), and the catalog rebuilt.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

import numpy as np
from data_store_builder import GEOMETRY, LAYOUT, SPLITS, PhantomStudy, build_store, patients

from breastflow.generate.synthetic import write_synthetic_series
from breastflow.store.annotation_commit import (
    LESION_MASK,
    LesionBox,
    read_annotation_commit,
    write_annotation_commit,
)
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.commit import read_commit, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split
from breastflow.store.zarr_io import series_attrs, write_mask

SHAPE = (8, 24, 32)
PHASES = ("pre", "post_1")
LOW_BOX = (2, 5, 8, 13, 4, 9)  # lesion in the low-X half (columns < 16)
HIGH_BOX = (2, 5, 9, 14, 21, 26)  # lesion in the high-X half


def segmentation_studies() -> tuple[list[PhantomStudy], dict[str, str], list[str]]:
    """7 pool patients (6 train + 1 val) + 1 multifocal pool study, 3 test patients + 1 multifocal test study.

    Returns:
        ``(studies, vendor of each study, multifocal studies)``.
    """
    train, val, test = patients(Split.TRAIN, 7), patients(Split.VAL, 1), patients(Split.TEST, 4)
    studies, vendor = [], {}
    for i, patient in enumerate(train[:6] + val):
        study = f"cv-{i}"
        studies.append(PhantomStudy(study, patient, shape=SHAPE, phases=PHASES, box=LOW_BOX if i % 2 else HIGH_BOX,
                                    seed=100 + i))
        vendor[study] = "ge" if i % 2 else "siemens"
    for i, patient in enumerate(test[:3]):
        study = f"ts-{i}"
        studies.append(PhantomStudy(study, patient, shape=SHAPE, phases=PHASES, box=HIGH_BOX if i % 2 else LOW_BOX,
                                    seed=200 + i))
        vendor[study] = "ge" if i % 2 else "siemens"
    studies.append(PhantomStudy("cv-multi", train[6], shape=SHAPE, phases=PHASES, box=LOW_BOX, seed=300))
    studies.append(PhantomStudy("ts-multi", test[3], shape=SHAPE, phases=PHASES, box=LOW_BOX, seed=301))
    vendor["cv-multi"] = vendor["ts-multi"] = "siemens"
    return studies, vendor, ["cv-multi", "ts-multi"]


def set_vendor(loc: StoreLocation, study: str, series: str, vendor: str) -> None:
    """Record ``vendor`` in a series' commit marker (what ingest reads from the DICOM header)."""
    record = read_commit(loc, study, series)
    write_commit(loc, record.model_copy(update={"vendor": vendor}))


def make_multifocal(loc: StoreLocation, study: str, second: tuple[int, int, int, int, int, int]) -> None:
    """Add a second lesion (label 2) to a study's mask and annotation record."""
    record = read_annotation_commit(loc, study)
    first = record.boxes[0]
    labels = np.zeros(SHAPE, np.uint8)
    labels[first.array_index()] = 1
    z0, z1, y0, y1, x0, x1 = second
    labels[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] = 2
    written = write_mask(loc, study, LESION_MASK, labels, GEOMETRY, {}, LAYOUT)
    box = LesionBox(lesion_id=2, series="pre", start_slice=z0, end_slice=z1, start_row=y0, end_row=y1,
                    start_column=x0, end_column=x1, lesion_class="malignant")
    write_annotation_commit(loc, record.model_copy(update={
        "boxes": (first, box), "n_lesions": 2, "lesion_classes": ("malignant", "malignant"),
        "mask_hash": written.content_hash, "mask_labels": (1, 2)}))


def write_synthetic_set(loc: StoreLocation, name: str, studies: list[str], gain: float = 0.9) -> None:
    """A synthetic ``post_1`` per study: the real one times ``gain`` (a stand-in generator)."""
    from breastflow.generate.compare import read_physical

    for study in studies:
        real = read_commit(loc, study, "post_1")
        attrs = series_attrs(loc, study, "post_1")["breastflow"]
        volume = np.round(read_physical(loc, study, "post_1") * gain).astype(real.dtype)
        write_synthetic_series(loc, name, real, attrs, volume, {"generator": "gain"}, f"syn-{study}")


def build_segmentation_store(url: str, synthetic: str | None = "syn") -> StoreLocation:
    """The tiny store: vendors set, two multifocal studies, and (unless ``None``) synthetic set ``synthetic``."""
    studies, vendor, multifocal = segmentation_studies()
    loc = build_store(url, studies)
    for s in studies:
        for phase in PHASES:
            set_vendor(loc, s.study, phase, vendor[s.study])
    for study in multifocal:
        make_multifocal(loc, study, HIGH_BOX)
    rebuild_catalog(loc, SPLITS)
    if synthetic is not None:
        write_synthetic_set(loc, synthetic, [s.study for s in studies])
    return loc


def box_volume(name: str, seed: int, shape: tuple[int, int, int] = (8, 24, 32), lesion: bool = True):
    """A random ``Volume`` whose lesion box (mask 1, 3x4x4 voxels) is brighter; ``lesion=False``: an empty mask."""
    from breastflow.segmentation.train import Volume

    rng = np.random.default_rng(seed)
    image = rng.standard_normal(shape).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    if lesion:
        z, y, x = (int(rng.integers(0, n - 4)) for n in shape)
        mask[z:z + 3, y:y + 4, x:x + 4] = 1
        image[mask > 0] += 2.0
    return Volume(name, image, mask)
