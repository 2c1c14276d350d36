"""``lesion_patches`` over a tiny phantom store: lesion/healthy patches, labels, padding, seeds, splits, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from data_store_builder import SPLITS, PhantomStudy, build_store, patients, write_study

from breastflow.data import keys
from breastflow.data.datasets import DatasetError, build_dataset
from breastflow.data.datasets.lesion_patches import (
    LesionPatchesDataset,
    LesionPatchesSpec,
    LesionSlices,
    PatchClass,
    _patch_class,
    crop_padded,
)
from breastflow.data.datasets.paired import MissingPhaseError
from breastflow.store.annotation_commit import (
    AnnotationRecord,
    read_annotation_commit,
    write_annotation_commit,
)
from breastflow.store.catalog import read_catalog, rebuild_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split

TRAIN = patients(Split.TRAIN, 4, prefix="lp")
TEST = patients(Split.TEST, 1, prefix="lp")
SHAPE = (10, 40, 40)
PHASES = ("pre", "post_1", "post_2")
MALIGNANT_BOX = (3, 6, 10, 17, 12, 19)  # centre (13, 15): a 32 patch reaches 3 rows above and 1 column left of the image
BENIGN_BOX = (2, 4, 0, 3, 30, 36)  # at the top edge
STUDIES = [
    PhantomStudy("lp-mal", TRAIN[0], shape=SHAPE, phases=PHASES, box=MALIGNANT_BOX, seed=1),
    PhantomStudy("lp-ben", TRAIN[1], shape=SHAPE, phases=PHASES, box=BENIGN_BOX, seed=2, dtype="int16", slope=2.0,
                 intercept=-100.0),
    PhantomStudy("lp-hea", TRAIN[2], shape=SHAPE, phases=PHASES, box=None, seed=3),
    PhantomStudy("lp-t", TEST[0], shape=SHAPE, phases=PHASES, box=MALIGNANT_BOX, seed=4),
]
N_LESION = 4 + 3  # slices of the two train boxes


def _annotate(loc: StoreLocation) -> None:
    """lp-ben: benign, boxes only (no mask); lp-hea: annotated healthy (no boxes)."""
    record = read_annotation_commit(loc, "lp-ben")
    benign = record.boxes[0].model_copy(update={"lesion_class": "benign"})
    write_annotation_commit(loc, record.model_copy(update={"boxes": (benign,), "lesion_classes": ("benign",),
                                                           "has_mask": False}))
    write_annotation_commit(loc, AnnotationRecord(study="lp-hea", patient=TRAIN[2], source_format="phantom",
                                                  n_lesions=0, source_fingerprint="ann-3", breastflow_version="test"))
    rebuild_catalog(loc, SPLITS)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("patches") / "store"
    _annotate(build_store(str(path), STUDIES))
    return str(path)


def _boxes_overlap(z: int, top: int, left: int, size: int, box: tuple[int, ...]) -> bool:
    z0, z1, y0, y1, x0, x1 = box
    return z0 <= z <= z1 and top <= y1 and top + size - 1 >= y0 and left <= x1 and left + size - 1 >= x0


def _place(key: str) -> tuple[str, int, int, int]:
    study, z, yx = key.split("/")
    y, x = yx[1:].split("x")
    return study, int(z[1:]), int(y), int(x)


def test_items_have_shapes_labels_and_the_healthy_ratio(store):
    ds = LesionPatchesDataset(store, LesionPatchesSpec())
    assert ds.studies == ("lp-ben", "lp-hea", "lp-mal")
    assert len(ds) == 2 * N_LESION  # healthy:lesion 1:1
    labels = [int(ds[i][keys.LABEL]) for i in range(len(ds))]
    assert labels.count(PatchClass.MALIGNANT) == 4 and labels.count(PatchClass.BENIGN) == 3
    assert labels.count(PatchClass.HEALTHY) == N_LESION
    for index in (0, len(ds) - 1):
        item = ds[index]
        assert set(item) == {keys.IMAGE, keys.MASK, keys.LABEL, keys.KEY}
        assert item[keys.IMAGE].shape == (2, 32, 32) and item[keys.IMAGE].dtype == torch.float32
        assert item[keys.MASK].shape == (1, 32, 32) and item[keys.MASK].dtype == torch.uint8
        assert -1.0 <= float(item[keys.IMAGE].min()) and float(item[keys.IMAGE].max()) <= 1.0
        assert item[keys.LABEL].dtype == torch.int64
    three = LesionPatchesDataset(store, LesionPatchesSpec(phases=PHASES, patch_size=16, healthy_ratio=2.5))
    assert len(three) == N_LESION + round(2.5 * N_LESION) and three[0][keys.IMAGE].shape == (3, 16, 16)
    centre = LesionPatchesDataset(store, LesionPatchesSpec(lesion_slices=LesionSlices.CENTRE, healthy_ratio=0))
    assert [ds_item[keys.KEY] for ds_item in centre] == ["lp-ben/z3/y1x33", "lp-mal/z4/y13x15"]


def test_lesion_patch_is_centred_on_the_box_and_padded_with_the_slice_minimum(store):
    ds = LesionPatchesDataset(store, LesionPatchesSpec())
    index = next(i for i, it in enumerate(ds.items) if it.study == "lp-mal" and it.z == 5)
    item = ds[index]
    assert item[keys.KEY] == "lp-mal/z5/y13x15" and int(item[keys.LABEL]) == PatchClass.MALIGNANT
    raw = ds.reader.read_picks([("lp-mal", "pre", 5), ("lp-mal", "post_1", 5)])
    full = np.stack([ds.intensity_map("lp-mal", p).normalise(a) for p, a in zip(("pre", "post_1"), raw, strict=True)])
    image = item[keys.IMAGE].numpy()
    np.testing.assert_array_equal(image[:, 3:, 1:], full[:, :29, :31])  # rows -3.. and column -1.. of the slice
    for c in range(2):
        assert (image[c, :3] == full[c].min()).all() and (image[c, :, 0] == full[c].min()).all()
    mask = item[keys.MASK][0].numpy()  # the stored mask: the 8 x 8 box, centred
    assert mask.sum() == 64 and mask[16, 16] == 1 and mask[13:21, 13:21].all()
    # lp-ben has no stored mask: the boxes are filled with their lesion id (box rows 0..3, cols 30..36)
    benign = ds[next(i for i, it in enumerate(ds.items) if it.study == "lp-ben")]
    assert int(benign[keys.LABEL]) == PatchClass.BENIGN and benign[keys.MASK].sum() == 4 * 7
    # lesion enhancement survives the shared unit: post_1 brighter than pre in the box
    assert float(image[1, 13:21, 13:21].mean()) > float(image[0, 13:21, 13:21].mean()) + 0.2


def test_healthy_patches_lie_inside_the_image_in_the_body_away_from_every_box(store):
    boxes = {"lp-mal": MALIGNANT_BOX, "lp-ben": BENIGN_BOX}
    for gap in (0, 2):  # gap 2 leaves lp-mal only slices 0 and 9
        ds = LesionPatchesDataset(store, LesionPatchesSpec(healthy_ratio=2.0, healthy_gap=gap))
        healthy = [ds[i] for i, it in enumerate(ds.items) if it.label is PatchClass.HEALTHY]
        assert len(healthy) == 2 * N_LESION
        assert {_place(h[keys.KEY])[0] for h in healthy} == {"lp-ben", "lp-hea", "lp-mal"}
        for h in healthy:
            study, z, y, x = _place(h[keys.KEY])
            top, left = y - 16, x - 16
            assert 0 <= top <= SHAPE[1] - 32 and 0 <= left <= SHAPE[2] - 32
            if study in boxes:
                z0, z1, y0, y1, x0, x1 = boxes[study]
                grown = (z0 - gap, z1 + gap, y0 - gap, y1 + gap, x0 - gap, x1 + gap)
                assert not _boxes_overlap(z, top, left, 32, grown), (h[keys.KEY], gap)
            assert int(h[keys.MASK].sum()) == 0 and int(h[keys.LABEL]) == PatchClass.HEALTHY
            body = (h[keys.IMAGE][0] >= -0.8 - 1e-6).float().mean()  # physical >= 0.2 unit, clip_max 2
            assert float(body) >= 0.5


def test_patches_are_deterministic_given_the_seed(store):
    first = LesionPatchesDataset(store, LesionPatchesSpec(seed=3))
    again = LesionPatchesDataset(store, LesionPatchesSpec(seed=3))
    items = [first[i] for i in range(len(first))]
    for i, item in enumerate(items):
        other = again[i]
        assert other[keys.KEY] == item[keys.KEY] and torch.equal(other[keys.IMAGE], item[keys.IMAGE])
    first.set_epoch(4)  # patches do not change with the epoch
    assert [first[i][keys.KEY] for i in range(len(first))] == [it[keys.KEY] for it in items]
    reseeded = LesionPatchesDataset(store, LesionPatchesSpec(seed=4))
    healthy = [i for i, it in enumerate(first.items) if it.label is PatchClass.HEALTHY]
    assert [reseeded[i][keys.KEY] for i in healthy] != [items[i][keys.KEY] for i in healthy]
    assert [reseeded[i][keys.KEY] for i in range(N_LESION)] == [items[i][keys.KEY] for i in range(N_LESION)]
    batch = next(iter(torch.utils.data.DataLoader(first, batch_size=len(first))))
    assert batch[keys.IMAGE].shape == (len(first), 2, 32, 32)


def test_splits_come_from_the_catalog(store):
    train = LesionPatchesDataset(store, LesionPatchesSpec())
    catalog = read_catalog(StoreLocation.from_url(store))
    patients_used = set(catalog[catalog.study.isin(train.studies)].patient)
    assert not patients_used & set(catalog[catalog.split == "test"].patient)
    assert not {_place(train[i][keys.KEY])[0] for i in range(len(train))} & {"lp-t"}
    test = LesionPatchesDataset(store, LesionPatchesSpec(split=Split.TEST))
    assert test.studies == ("lp-t",) and len(test) == 2 * 4
    with pytest.raises(DatasetError, match=f"store {store} has no val studies"):
        LesionPatchesDataset(store, LesionPatchesSpec(split=Split.VAL))


def test_missing_phase_or_annotations_are_clear_errors(tmp_path, store):
    with pytest.raises(MissingPhaseError, match=rf"store {store}: 'post_9' is missing in 3 of 3 train studies"):
        LesionPatchesDataset(store, LesionPatchesSpec(phases=("pre", "post_9")))
    bare = str(tmp_path / "bare")
    build_store(bare, [PhantomStudy("lp-x", TRAIN[0], shape=(4, 16, 16), phases=("pre",), box=None)])
    with pytest.raises(DatasetError, match=rf"store {bare}: 1 of 1 train studies have no committed lesion "
                                           "annotations .*ingest them with --annotations$"):
        LesionPatchesDataset(bare, LesionPatchesSpec(phases=("pre",)))
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    write_study(loc, PhantomStudy("lp-new", TRAIN[3], shape=SHAPE, phases=PHASES, box=None, seed=9))
    rebuild_catalog(loc, SPLITS)
    with pytest.raises(DatasetError, match="1 of 4 train studies have no committed lesion annotations"):
        LesionPatchesDataset(str(copy), LesionPatchesSpec())
    skipping = LesionPatchesDataset(str(copy), LesionPatchesSpec(require_all=False))
    assert skipping.skipped == {"no-annotations": 1} and "lp-new" not in skipping.studies


def test_unclassified_lesions_and_impossible_healthy_patches(tmp_path, store):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    record = read_annotation_commit(loc, "lp-mal")
    write_annotation_commit(loc, record.model_copy(update={
        "boxes": (record.boxes[0].model_copy(update={"lesion_class": None}),), "lesion_classes": (None,)}))
    with pytest.raises(DatasetError, match="lesion 1 of study lp-mal has class None, not benign/malignant"):
        LesionPatchesDataset(str(copy), LesionPatchesSpec())
    benign_only = LesionPatchesDataset(str(copy), LesionPatchesSpec(skip_unclassified=True))
    assert len(benign_only) == 2 * 3
    healthy = [benign_only[i] for i, it in enumerate(benign_only.items) if it.label is PatchClass.HEALTHY]
    for h in healthy:  # the unclassified lesion is still avoided
        study, z, y, x = _place(h[keys.KEY])
        assert study != "lp-mal" or not _boxes_overlap(z, y - 16, x - 16, 32, MALIGNANT_BOX)
    too_big = LesionPatchesDataset(store, LesionPatchesSpec(patch_size=48))
    assert too_big[0][keys.IMAGE].shape == (2, 48, 48)  # lesion patches pad
    with pytest.raises(DatasetError, match=r"study lp-ben \(40x40\) has no place for a 48x48 healthy patch"):
        too_big[N_LESION]
    with pytest.raises(ValueError, match="repeat a series"):
        build_dataset("lesion_patches", store, {"phases": ["pre", "pre"]})


@pytest.mark.parametrize(("top", "left", "expected"), [
    (0, 0, [[0, 1], [3, 4]]),
    (-1, -1, [[9, 9], [9, 0]]),
    (2, 2, [[8, 9], [9, 9]]),
    (5, 5, [[9, 9], [9, 9]]),
])
def test_crop_padded(top, left, expected):
    arrays = np.arange(9).reshape(1, 3, 3)
    assert crop_padded(arrays, top, left, 2, np.array([9])).tolist() == [expected]


@pytest.mark.parametrize(("stored", "expected"), [
    ("malignant", PatchClass.MALIGNANT), (" Benign ", PatchClass.BENIGN), ("MALIGNANT", PatchClass.MALIGNANT),
    ("mass", None), (None, None), ("healthy", None),
])
def test_stored_lesion_classes_map_to_patch_labels(stored, expected):
    assert _patch_class(stored) is expected
