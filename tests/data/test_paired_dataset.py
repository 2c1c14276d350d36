"""``paired_phases`` over a tiny phantom store: items, intensity, slice choice, splits, augmentation, loaders."""

from __future__ import annotations

import io
import pickle
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from data_store_builder import (
    PhantomStudy,
    build_store,
    patients,
    raw_volumes,
    write_study,
)

from breastflow.data import keys
from breastflow.data.augment import AugmentConfig
from breastflow.data.datasets import DatasetError, build_dataset
from breastflow.data.datasets.paired import (
    MissingPhaseError,
    PairedPhasesDataset,
    PairedPhasesSpec,
)
from breastflow.data.intensity import (
    IntensityConfig,
    Normalisation,
    Rescale,
    UnitConfig,
    volume_unit,
)
from breastflow.data.slice_choice import MarginBasis, SliceChoice
from breastflow.data.split_guard import SplitLeakageError
from breastflow.registry import RegistryError
from breastflow.store import layout
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.commit import read_commit, write_commit
from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.store.splits import Split

TRAIN = patients(Split.TRAIN, 3)
TEST = patients(Split.TEST, 1)
STUDIES = [
    PhantomStudy("stu-a", TRAIN[0], box=(4, 15, 8, 13, 9, 14), seed=1),  # 12-slice box
    PhantomStudy("stu-b", TRAIN[1], dtype="int16", slope=2.0, intercept=-100.0, box=(1, 4, 6, 11, 6, 11),
                 seed=2),  # rescale still to apply; box near the first slice
    PhantomStudy("stu-c", TRAIN[2], phases=("pre", "post_1", "post_2"), box=None, seed=3),  # no post_3, no boxes
    PhantomStudy("stu-t", TEST[0], seed=4),
]
Z, H, W = 20, 24, 24


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("paired") / "store"
    build_store(str(path), STUDIES)
    return str(path)


def _spec(**fields) -> PairedPhasesSpec:
    return PairedPhasesSpec(**fields)


def test_items_have_the_contract_shapes_dtypes_and_ranges(store):
    ds = PairedPhasesDataset(store, _spec())
    assert len(ds) == 3 * Z and ds.studies == ("stu-a", "stu-b", "stu-c")
    for index in (0, 9, len(ds) - 1):
        item = ds[index]
        assert set(item) == {keys.IMAGE, keys.TARGET, keys.MASK, keys.KEY}
        assert item[keys.IMAGE].shape == (1, H, W) and item[keys.IMAGE].dtype == torch.float32
        assert item[keys.TARGET].shape == (1, H, W) and item[keys.TARGET].dtype == torch.float32
        assert item[keys.MASK].shape == (1, H, W) and item[keys.MASK].dtype == torch.uint8
        for name in (keys.IMAGE, keys.TARGET):
            assert -1.0 <= float(item[name].min()) and float(item[name].max()) <= 1.0
        study, z = ds.items[index]
        assert item[keys.KEY] == f"{study}/z{z}"
    # the mask is the stored lesion mask (box of stu-a covers slices 4..15), zeros without annotations
    assert ds[ds.items.index(("stu-a", 10))][keys.MASK].sum() == 6 * 6
    assert ds[ds.items.index(("stu-a", 2))][keys.MASK].sum() == 0
    assert ds[ds.items.index(("stu-c", 10))][keys.MASK].sum() == 0


def test_joint_targets_are_three_channels_and_skip_studies_without_every_phase(store):
    ds = build_dataset("paired_phases", store, {"targets": ["post_1", "post_2", "post_3"], "require_all": False})
    assert ds.studies == ("stu-a", "stu-b") and ds.skipped == {"missing-post_3": 1}
    assert ds[0][keys.TARGET].shape == (3, H, W)


def test_missing_phase_is_a_clear_error(store):
    with pytest.raises(MissingPhaseError, match=r"phase 'post_3' is missing in 1 of 3 train studies \(2 have it\)"):
        PairedPhasesDataset(store, _spec(targets=("post_3",)))
    with pytest.raises(MissingPhaseError, match="phase 'post_9' is missing in 3 of 3"):
        PairedPhasesDataset(store, _spec(targets=("post_9",)))


def test_registry_names_the_nearest_family(store):
    with pytest.raises(RegistryError, match="paired_phases"):
        build_dataset("paired_phase", store, {})
    with pytest.raises(ValueError, match="also a target"):
        _spec(targets=("pre",))
    with pytest.raises(ValueError, match="'every' is for evaluation selections"):
        build_dataset("paired_phases", store, {"slices": "every"})


def test_values_are_the_stored_raw_values_through_one_study_unit(store):
    ds = PairedPhasesDataset(store, _spec(split=Split.TRAIN))
    loc = StoreLocation.from_url(store)
    for s in STUDIES[:2]:
        raw = raw_volumes(s)
        unit = volume_unit(raw["pre"], Rescale(s.slope, s.intercept), UnitConfig())
        assert ds.study_unit(s.study) == pytest.approx(unit)  # what ingest would compute from the volume
        pre_map, post_map = ds.intensity_map(s.study, "pre"), ds.intensity_map(s.study, "post_1")
        assert pre_map.high == post_map.high == pytest.approx(2.0 * unit)  # one unit for every phase
        item = ds[ds.items.index((s.study, 9))]
        back = post_map.denormalise(item[keys.TARGET][0].numpy(), np.dtype(s.dtype))
        inside = Rescale(s.slope, s.intercept).apply(raw["post_1"][9]) <= 2.0 * unit  # not clipped
        assert inside.mean() > 0.9
        assert np.abs(back[inside].astype(int) - raw["post_1"][9][inside].astype(int)).max() <= 1
        # enhancement survives: inside the lesion box post_1 is brighter than pre (lesion +40 %, tissue +5 %)
        z0, _, y0, y1, x0, x1 = s.box
        item = ds[ds.items.index((s.study, z0))]
        pre = item[keys.IMAGE][0, y0:y1 + 1, x0:x1 + 1].mean()
        post = item[keys.TARGET][0, y0:y1 + 1, x0:x1 + 1].mean()
        pre_physical = (pre + 1) / 2 * 2.0 * unit
        post_physical = (post + 1) / 2 * 2.0 * unit
        assert float(post_physical / pre_physical) == pytest.approx(1.4, rel=0.05)
    assert read_commit(loc, "stu-a", "pre").intensity_unit is None  # computed by the loader here


def test_legacy_minmax_normalises_each_phase_alone(store):
    ds = PairedPhasesDataset(store, _spec(intensity=IntensityConfig(normalisation=Normalisation.LEGACY_MINMAX_8BIT)))
    raw = raw_volumes(STUDIES[0])
    for phase in ("pre", "post_1"):
        mapping = ds.intensity_map("stu-a", phase)
        assert (mapping.low, mapping.high) == (float(raw[phase].min()), float(raw[phase].max()))
    assert ds.intensity_map("stu-a", "pre").high < ds.intensity_map("stu-a", "post_1").high  # no shared unit
    levels = (ds[5][keys.TARGET].double() + 1) / 2 * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)


def test_unit_stored_in_the_commit_record_is_used_when_its_rule_matches(tmp_path, store):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    record = read_commit(loc, "stu-a", "pre")
    write_commit(loc, record.model_copy(update={"intensity_unit": 777.0, "intensity_unit_rule": UnitConfig().rule_id()}))
    assert PairedPhasesDataset(str(copy), _spec()).study_unit("stu-a") == 777.0
    other = _spec(intensity=IntensityConfig(unit=UnitConfig(percentile=99.0)))
    assert PairedPhasesDataset(str(copy), other).study_unit("stu-a") != 777.0  # other rule: computed


@pytest.mark.parametrize(("margin", "basis", "expected"), [
    # stu-a box 4..15 (12 slices), stu-b box 1..4 (4 slices), Z = 20
    (0.05, MarginBasis.BOX_EXTENT, {"stu-a": range(3, 17), "stu-b": range(6)}),
    (0.25, MarginBasis.BOX_EXTENT, {"stu-a": range(1, 19), "stu-b": range(6)}),
    (0.0, MarginBasis.BOX_EXTENT, {"stu-a": range(4, 16), "stu-b": range(1, 5)}),
    (0.05, MarginBasis.VOLUME_DEPTH, {"stu-a": range(3, 17), "stu-b": range(6)}),
    (0.15, MarginBasis.VOLUME_DEPTH, {"stu-a": range(1, 19), "stu-b": range(8)}),
])
def test_lesion_slices_are_the_box_plus_margins(store, margin, basis, expected):
    ds = PairedPhasesDataset(store, _spec(slices=SliceChoice.LESION, margin=margin, margin_basis=basis,
                                          require_all=False))
    assert ds.skipped == {"no-annotations": 1}  # stu-c has no boxes
    for study, slices in expected.items():
        assert [z for s, z in ds.items if s == study] == list(slices)
    assert len(ds) == sum(len(r) for r in expected.values())


def test_lesion_slices_without_annotations_is_a_clear_error(store):
    with pytest.raises(MissingPhaseError, match="1 of 3 train studies have no committed lesion annotations"):
        PairedPhasesDataset(store, _spec(slices=SliceChoice.LESION))


def test_splits_come_from_the_catalog(store):
    test = PairedPhasesDataset(store, _spec(split=Split.TEST))
    assert test.studies == ("stu-t",)
    with pytest.raises(DatasetError, match="no val studies"):
        PairedPhasesDataset(store, _spec(split=Split.VAL))


def test_a_test_patient_in_the_train_split_raises(tmp_path, store):
    """A tampered catalog puts one row of a train patient under test: building a train dataset must refuse."""
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    catalog = pq.read_table(copy / layout.CATALOG_FILE).to_pandas()
    catalog.loc[(catalog.study == "stu-a") & (catalog.series == "post_3"), "split"] = "test"
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(catalog, preserve_index=False), sink)
    atomic_write_bytes(loc, layout.CATALOG_FILE, sink.getvalue())
    with pytest.raises(SplitLeakageError, match=f"1 patient.*train dataset also have test data.*{TRAIN[0]}"):
        PairedPhasesDataset(str(copy), _spec())
    with pytest.raises(SplitLeakageError):
        PairedPhasesDataset(str(copy), _spec(split=Split.TEST))
    rebuild_catalog(loc, __import__("data_store_builder").SPLITS)  # the rebuilt catalog is consistent again
    assert len(PairedPhasesDataset(str(copy), _spec())) == 3 * Z


def test_augmentation_rotates_image_target_and_mask_together_seeded(store):
    plain = PairedPhasesDataset(store, _spec())
    always = PairedPhasesDataset(store, _spec(augment=AugmentConfig(rot90_p=1.0)))
    index = plain.items.index(("stu-a", 10))
    for name in (keys.IMAGE, keys.TARGET, keys.MASK):
        assert torch.equal(always[index][name], torch.rot90(plain[index][name], 1, (1, 2)))
    paper = PairedPhasesDataset(store, _spec(augment=AugmentConfig(seed=3)))
    rotated = [not torch.equal(paper[i][keys.IMAGE], plain[i][keys.IMAGE]) for i in range(len(plain))]
    assert 0.3 < np.mean(rotated) < 0.7  # p = 0.5
    again = PairedPhasesDataset(store, _spec(augment=AugmentConfig(seed=3)))
    assert all(torch.equal(again[i][keys.MASK], paper[i][keys.MASK]) for i in range(len(plain)))
    paper.set_epoch(1)
    assert [not torch.equal(paper[i][keys.IMAGE], plain[i][keys.IMAGE]) for i in range(len(plain))] != rotated


def test_image_size_resizes_every_array(store):
    ds = PairedPhasesDataset(store, _spec(image_size=16, targets=("post_1", "post_2"), require_all=False))
    item = ds[ds.items.index(("stu-a", 10))]
    assert item[keys.IMAGE].shape == (1, 16, 16) and item[keys.TARGET].shape == (2, 16, 16)
    assert item[keys.MASK].shape == (1, 16, 16) and set(item[keys.MASK].unique().tolist()) == {0, 1}


def _all_items(loader) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for batch in loader:
        for b, key in enumerate(batch[keys.KEY]):
            out[key] = {name: batch[name][b] for name in (keys.IMAGE, keys.TARGET, keys.MASK)}
    return out


def test_dataloader_with_two_workers_opens_readers_lazily(store):
    ds = PairedPhasesDataset(store, _spec(augment=AugmentConfig()))
    assert ds._reader is None  # nothing opened by construction
    ds[3]  # opens a reader and caches a unit in this process ...
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._reader is None and clone._units == {} and ds._units  # ... which a pickled copy does not carry
    assert torch.equal(clone[3][keys.TARGET], ds[3][keys.TARGET])
    ds._reset_lazy()
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    got = _all_items(loader)
    assert ds._reader is None  # the workers read, not the main process
    assert len(got) == len(ds)
    for index in (0, 25, len(ds) - 1):
        item = ds[index]
        for name in (keys.IMAGE, keys.TARGET, keys.MASK):
            assert torch.equal(got[item[keys.KEY]][name], item[name])


@pytest.mark.integration
def test_s3_store_through_dataloader_workers_equals_local(tmp_path):
    from breastflow.store.local_s3 import local_s3

    studies = [PhantomStudy("stu-a", TRAIN[0], shape=(8, 16, 16), phases=("pre", "post_1"), box=(2, 4, 4, 9, 4, 9)),
               PhantomStudy("stu-b", TRAIN[1], shape=(8, 16, 16), phases=("pre", "post_1"), dtype="int16",
                            slope=2.0, intercept=-100.0, box=None, seed=2)]
    local = build_store(str(tmp_path / "store"), studies)
    with local_s3() as s3:
        s3.make_bucket("data")
        build_store("s3://data/store", studies)
        remote = PairedPhasesDataset("s3://data/store", _spec())
        assert remote.loc.remote and remote.version == PairedPhasesDataset(local.url, _spec()).version
        got = _all_items(torch.utils.data.DataLoader(remote, batch_size=4, num_workers=2))
        reference = _all_items(torch.utils.data.DataLoader(PairedPhasesDataset(local.url, _spec()), batch_size=4))
    assert set(got) == set(reference) and len(got) == 16
    for key, item in reference.items():
        for name, value in item.items():
            assert torch.equal(got[key][name], value), (key, name)


def test_dataset_version_changes_with_the_series_it_reads(tmp_path, store):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    before = PairedPhasesDataset(str(copy), _spec()).version
    assert before == PairedPhasesDataset(store, _spec(augment=AugmentConfig())).version  # same data, same version
    loc = StoreLocation.from_url(str(copy))
    write_study(loc, PhantomStudy("stu-c", TRAIN[2], phases=("pre", "post_1", "post_2"), box=None, seed=3,
                                  boost={"post_2": 0.5}))  # re-ingest: only post_2 changes
    rebuild_catalog(loc, __import__("data_store_builder").SPLITS)
    assert PairedPhasesDataset(str(copy), _spec()).version == before  # post_2 is not read
    write_study(loc, PhantomStudy("stu-c", TRAIN[2], phases=("pre", "post_1", "post_2"), box=None, seed=3,
                                  boost={"post_1": 0.5}))
    rebuild_catalog(loc, __import__("data_store_builder").SPLITS)
    assert PairedPhasesDataset(str(copy), _spec()).version != before
    assert pd.read_parquet(copy / layout.CATALOG_FILE).shape[0] == 15
