"""``dataset_version``: order-independent, changes exactly when a series read (or its annotations) changes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_store_builder import SPLITS, PhantomStudy, build_store, patients, write_study

from breastflow.data.slices import SliceReader, mask_series
from breastflow.data.version import ANNOTATIONS, dataset_version
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split

TRAIN = patients(Split.TRAIN, 2)
STUDIES = [PhantomStudy("stu-a", TRAIN[0], shape=(6, 12, 12), phases=("pre", "post_1"), box=(1, 3, 2, 5, 2, 5)),
           PhantomStudy("stu-b", TRAIN[1], shape=(6, 12, 12), phases=("pre", "post_1"), box=None, seed=5)]
KEYS = [("stu-a", "pre"), ("stu-a", "post_1"), ("stu-b", "pre"), ("stu-b", "post_1"), ("stu-a", ANNOTATIONS)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("version") / "store"
    build_store(str(path), STUDIES)
    return str(path)


def test_order_and_repeats_do_not_matter(store):
    loc = StoreLocation.from_url(store)
    version = dataset_version(loc, KEYS)
    assert version.startswith("dsv1:") and len(version) == 5 + 64
    assert dataset_version(loc, list(reversed(KEYS)) + KEYS[:2]) == version
    assert dataset_version(loc, KEYS[:-1]) != version  # annotations are part of what is read
    assert dataset_version(loc, KEYS[:2]) != dataset_version(loc, KEYS[2:4])


def test_unknown_series_and_empty_keys_fail_clearly(store):
    loc = StoreLocation.from_url(store)
    with pytest.raises(KeyError, match="stu-a/post_3 is not committed"):
        dataset_version(loc, [("stu-a", "post_3")])
    with pytest.raises(KeyError, match="stu-b has no committed annotations"):
        dataset_version(loc, [("stu-b", ANNOTATIONS)])
    with pytest.raises(ValueError, match="at least one"):
        dataset_version(loc, [])


def test_reingesting_one_series_differently_changes_only_selections_reading_it(tmp_path, store):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    before_all, before_b = dataset_version(loc, KEYS), dataset_version(loc, KEYS[2:4])
    write_study(loc, PhantomStudy("stu-a", TRAIN[0], shape=(6, 12, 12), phases=("pre", "post_1"),
                                  box=(1, 3, 2, 5, 2, 5), boost={"post_1": 0.3}))
    rebuild_catalog(loc, SPLITS)
    assert dataset_version(loc, KEYS) != before_all
    assert dataset_version(loc, KEYS[2:4]) == before_b
    # an identical re-ingest keeps the version (content hashes, not write times)
    write_study(loc, PhantomStudy("stu-b", TRAIN[1], shape=(6, 12, 12), phases=("pre", "post_1"), box=None, seed=5))
    rebuild_catalog(loc, SPLITS)
    assert dataset_version(loc, KEYS[2:4]) == before_b


def test_masks_read_through_the_slice_reader(store):
    reader = SliceReader(StoreLocation.from_url(store))
    got = reader.read_slices("stu-a", mask_series("lesions"), [0, 2, 5])
    assert got.dtype == np.uint8 and got.shape == (3, 12, 12)
    assert got[0].sum() == 0 and got[1].sum() == 16 and got[1, 2:6, 2:6].all()
    assert reader._open("stu-a", mask_series("lesions")).direct  # the fast path, as for images
    picks = reader.read_picks([("stu-a", "pre", 2), ("stu-a", mask_series("lesions"), 2)])
    assert picks[1].sum() == 16 and picks[0].dtype == np.uint16
    with pytest.raises(FileNotFoundError, match="no mask stu-b/masks/lesions"):
        reader.read_slices("stu-b", mask_series("lesions"), [0])
