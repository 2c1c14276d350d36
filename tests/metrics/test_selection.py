"""Store selections: parsing, slice choices, intensity scales, and reads equal to pydicom's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from phantom_store import PhantomStore, build_phantom_store

from breastflow.data.image_sets import InputError
from breastflow.data.selection import (
    IntensityScale,
    SelectionError,
    StoreSelection,
    is_store_selection,
    keys_from_names,
    parse_selection,
)
from breastflow.data.selection_loading import load_input, load_selection
from breastflow.data.slice_choice import SliceChoice
from breastflow.store.splits import Split


@pytest.fixture(scope="session")
def phantom(tmp_path_factory) -> PhantomStore:
    return build_phantom_store(tmp_path_factory.mktemp("evalstore"))


@pytest.mark.parametrize("text, expected", [
    ("store:///data/s?series=post_1", {"store": "/data/s", "series": "post_1"}),
    ("store:///data/s?series=pre&split=train,val&slices=lesion&margin=0.1",
     {"series": "pre", "splits": (Split.TRAIN, Split.VAL), "slices": SliceChoice.LESION, "margin": 0.1}),
    ("s3://bucket/store?series=post_2&vendor=GE,Siemens&field_strength=1.5,3&scale=per-case",
     {"store": "s3://bucket/store", "vendors": ("ge", "siemens"), "field_strengths": (1.5, 3.0),
          "scale": IntensityScale.PER_CASE}),
    ("store://rel/store?series=t2&slices=every&every=4&study=stu-a,stu-b&annotated=true",
     {"store": "rel/store", "slices": SliceChoice.EVERY, "every": 4, "studies": ("stu-a", "stu-b"), "annotated_only": True}),
])
def test_parse_selection_fields_and_round_trip(text, expected):
    sel = parse_selection(text)
    for key, value in expected.items():
        assert getattr(sel, key) == value, key
    assert parse_selection(sel.to_text()) == sel


@pytest.mark.parametrize("text, message", [
    ("store:///s?split=test", "needs series=<role>"),
    ("store:///s?series=post_1&slice=lesion", "did you mean 'slices'"),
    ("store:///s?series=post_1&split=tests", "choose from train, val, test"),
    ("store:///s?series=post_1&slices=tumour", "choose from all, lesion, every"),
    ("store:///s?series=post_1&scale=minmax", "choose from raw, per-case"),
    ("store:///s?series=post_1&series=pre", "given twice"),
    ("store:///s?series=Post 1", "not a valid store name"),
    ("store:///s?series=post_1&margin=1.5", "margin"),
    ("store:///s?series=post_1&every=0", "every"),
    ("/data/folder", "not a store selection"),
])
def test_parse_selection_errors_name_the_problem(text, message):
    with pytest.raises(SelectionError, match=message):
        parse_selection(text)


def test_folders_and_selections_are_told_apart():
    assert is_store_selection("store:///x?series=pre") and is_store_selection("s3://b/x?series=pre")
    assert not is_store_selection("/tmp/images") and not is_store_selection("relative/images")


@pytest.mark.parametrize("names, keys", [
    (["stu-ab_z0003", "stu-ab_z12.png", "stu-c_d_z7.npy"], [("stu-ab", 3, False), ("stu-ab", 12, False),
                                                            ("stu-c_d", 7, False)]),
    (["stu-ab.npy[0]", "stu-ab.npy[5]"], [("stu-ab", 0, True), ("stu-ab", 5, True)]),
    (["slice_000.png"], None),
    (["stu-ab_z3.png", "other.png"], None),
])
def test_keys_from_names(names, keys):
    assert keys_from_names(names) == keys


def test_all_slices_equal_pydicom_and_carry_catalog_labels(phantom):
    images = load_selection(phantom.selection("series=post_1"), "real")
    meta = images.meta
    assert list(meta.study.unique()) == sorted(phantom.study_of.values())
    for study_id, study in phantom.study_of.items():
        dicom = phantom.dicom_volume(study_id, phantom.series_numbers(study_id)["post_1"])
        rows = np.flatnonzero(meta.study.to_numpy() == study)
        assert meta.slice.to_numpy()[rows].tolist() == list(range(len(dicom)))
        stored = np.stack([images.images[i] for i in rows])
        assert stored.dtype == dicom.dtype
        np.testing.assert_array_equal(stored, dicom)
    assert set(meta.vendor) == {"GE MEDICAL SYSTEMS", "SIEMENS"} and set(meta.field_strength) == {1.5}
    assert images.names[0] == f"{meta.study[0]}_z0000"


def test_lesion_slices_follow_the_boxes_plus_margin(phantom):
    lesions = pd.read_csv(phantom.cohort / "lesions.csv")
    cohort = pd.read_csv(phantom.cohort / "cohort.csv").set_index("study_id")
    images = load_selection(phantom.selection("series=post_1&slices=lesion&margin=0.05"), "real")
    for study_id, study in phantom.study_of.items():
        z = int(cohort.loc[study_id, "n_slices"])
        margin = math.ceil(0.05 * z)
        expected: set[int] = set()
        classes: dict[int, set[str]] = {}
        for _, lesion in lesions[lesions.study_id == study_id].iterrows():
            expected |= set(range(max(0, lesion.start_slice - margin), min(z - 1, lesion.end_slice + margin) + 1))
            for k in range(lesion.start_slice, lesion.end_slice + 1):
                classes.setdefault(k, set()).add(lesion["class"])
        got = images.meta[images.meta.study == study]
        assert got.slice.tolist() == sorted(expected)  # the healthy study contributes no slice
        assert got.lesion_class.tolist() == ["+".join(sorted(classes[k])) if k in classes else "none"
                                             for k in sorted(expected)]
    every = load_selection(phantom.selection("series=pre&slices=every&every=7"))
    assert set(every.meta.slice) <= set(range(0, 100, 7)) and 0 in set(every.meta.slice)


def test_per_case_scale_divides_by_the_pre_contrast_99th_percentile(phantom):
    images = load_selection(phantom.selection("series=post_1&scale=per-case&slices=every&every=3"))
    for study_id, study in phantom.study_of.items():
        numbers = phantom.series_numbers(study_id)
        unit = np.percentile(phantom.dicom_volume(study_id, numbers["pre"]).astype(np.float64), 99)
        post = phantom.dicom_volume(study_id, numbers["post_1"]).astype(np.float64)
        rows = np.flatnonzero(images.meta.study.to_numpy() == study)
        for i in rows:
            np.testing.assert_allclose(images.images[i], post[images.meta.slice[i]] / unit, rtol=1e-12)
        assert images.meta.case_scale[rows[0]] == pytest.approx(unit)
    # enhancement between phases survives: post-contrast lesion slices exceed the pre-contrast unit somewhere
    assert max(float(img.max()) for img in images.images) > 1.0


@pytest.mark.parametrize("query, message", [
    ("series=post_9", "unknown series role 'post_9'; the store has"),
    ("series=post_1&split=test", "empty selection: no post_1 series left after filtering by split"),
    ("series=post_1&vendor=philips", "vendor matching"),
    ("series=post_1&study=stu-0000", "not in the store"),
    ("series=post_1&field_strength=3", "field strength"),
])
def test_bad_selections_are_clear_errors(phantom, query, message):
    with pytest.raises(SelectionError, match=message):
        load_selection(phantom.selection(query))


def test_empty_store_and_folder_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelectionError, match="no committed series"):
        load_selection(StoreSelection(store=str(tmp_path / "empty"), series="pre"))
    folder = tmp_path / "fake"
    folder.mkdir()
    np.save(folder / "stu-x.npy", np.zeros((3, 8, 8), np.uint16))
    images = load_input(str(folder))
    assert images.meta.slice.tolist() == [0, 1, 2] and images.meta.from_stack.all()
    with pytest.raises(InputError, match="does not exist"):
        load_input(str(tmp_path / "missing"))
