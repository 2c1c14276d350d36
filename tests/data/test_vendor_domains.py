"""``vendor_domains`` over a tiny phantom store with three vendors: domains, pairing, splits, errors."""

from __future__ import annotations

import io
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from data_store_builder import SPLITS, PhantomStudy, patients, raw_volumes, write_study
from pydantic import ValidationError

from breastflow.data import keys
from breastflow.data.datasets import build_dataset
from breastflow.data.datasets.vendor_domains import (
    MissingDomainError,
    VendorDomainsDataset,
    VendorDomainsSpec,
    domain_matches,
)
from breastflow.data.intensity import Rescale, UnitConfig, volume_unit
from breastflow.data.split_guard import SplitLeakageError
from breastflow.registry import RegistryError
from breastflow.store import layout
from breastflow.store.catalog import read_catalog, rebuild_catalog
from breastflow.store.commit import read_commit, write_commit
from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.store.splits import Split

TRAIN = patients(Split.TRAIN, 4, prefix="vd")
TEST = patients(Split.TEST, 1, prefix="vd")
PHASES = ("pre", "post_1")
# (study, vendor as the DICOM Manufacturer, phantom study)
STUDIES = [
    ("vd-ge-a", "GE MEDICAL SYSTEMS", PhantomStudy("vd-ge-a", TRAIN[0], shape=(6, 16, 16), phases=PHASES, box=None,
                                                   seed=1)),
    ("vd-ge-b", "GE MEDICAL SYSTEMS", PhantomStudy("vd-ge-b", TRAIN[1], shape=(6, 16, 16), phases=PHASES, box=None,
                                                   dtype="int16", slope=2.0, intercept=-100.0, seed=2)),
    ("vd-sie", "SIEMENS", PhantomStudy("vd-sie", TRAIN[2], shape=(5, 20, 20), phases=PHASES, box=None, seed=3,
                                       tissue=900.0)),
    ("vd-phi", "Philips Medical Systems", PhantomStudy("vd-phi", TRAIN[3], shape=(4, 16, 16), phases=("pre",),
                                                       box=None, seed=4)),
    ("vd-test", "SIEMENS", PhantomStudy("vd-test", TEST[0], shape=(3, 20, 20), phases=PHASES, box=None, seed=5)),
]
N_GE, N_SIEMENS = 12, 5


def _build(url: str) -> StoreLocation:
    loc = StoreLocation.from_url(url)
    for study, vendor, phantom in STUDIES:
        write_study(loc, phantom)
        for series in phantom.phases:  # the builder commits vendor "phantom": set the manufacturer
            write_commit(loc, read_commit(loc, study, series).model_copy(update={"vendor": vendor}))
    rebuild_catalog(loc, SPLITS)
    return loc


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("vendor") / "store"
    _build(str(path))
    return str(path)


def test_items_pair_a_slice_of_each_domain_with_domain_labels(store):
    ds = VendorDomainsDataset(store, VendorDomainsSpec())
    assert ds.studies == (("vd-ge-a", "vd-ge-b"), ("vd-sie",))
    assert len(ds) == max(N_GE, N_SIEMENS) == N_GE
    for index in (0, 7, len(ds) - 1):
        item = ds[index]
        assert set(item) == {keys.IMAGE, keys.TARGET, keys.LABEL, keys.TARGET_LABEL, keys.KEY}
        assert item[keys.IMAGE].shape == (1, 16, 16) and item[keys.TARGET].shape == (1, 20, 20)
        assert item[keys.IMAGE].dtype == item[keys.TARGET].dtype == torch.float32
        assert int(item[keys.LABEL]) == 0 and int(item[keys.TARGET_LABEL]) == 1
        assert item[keys.LABEL].dtype == torch.int64
        a_key, b_key = item[keys.KEY].split("|")
        study, z = ds.items_a[index % N_GE]
        assert a_key == f"{study}/pre/z{z}" and b_key.startswith("vd-sie/pre/z")
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_values_follow_the_study_unit_rule(store):
    ds = VendorDomainsDataset(store, VendorDomainsSpec())
    phantom = STUDIES[1][2]  # int16 with a rescale still to apply
    raw = raw_volumes(phantom)["pre"]
    rescale = Rescale(phantom.slope, phantom.intercept)
    unit = volume_unit(raw, rescale, UnitConfig())
    index = ds.items_a.index(("vd-ge-b", 3))
    expected = np.clip(rescale.apply(raw[3]) / (2.0 * unit), 0, 1) * 2 - 1
    np.testing.assert_allclose(ds[index][keys.IMAGE][0].numpy(), expected, atol=1e-5)


def test_every_domain_b_slice_appears_each_epoch_and_pairing_is_epoch_seeded(store):
    ds = VendorDomainsDataset(store, VendorDomainsSpec())
    first = [ds[i][keys.KEY] for i in range(len(ds))]
    assert {k.split("|")[1] for k in first[:N_SIEMENS]} == {f"vd-sie/pre/z{z}" for z in range(N_SIEMENS)}
    again = VendorDomainsDataset(store, VendorDomainsSpec())
    assert [again[i][keys.KEY] for i in range(len(ds))] == first  # same seed, same epoch: same pairs
    ds.set_epoch(1)
    second = [ds[i][keys.KEY] for i in range(len(ds))]
    assert second != first and [k.split("|")[0] for k in second] == [k.split("|")[0] for k in first]
    other = VendorDomainsDataset(store, VendorDomainsSpec(seed=7))
    assert [other[i][keys.KEY] for i in range(len(ds))] != first
    clone = pickle.loads(pickle.dumps(ds))  # a worker's copy pairs as its parent
    assert clone._reader is None and [clone[i][keys.KEY] for i in range(len(ds))] == second


def test_other_domains_column_and_swapped_order(store):
    ds = build_dataset("vendor_domains", store, {"domains": ["siemens", "ge"]})
    assert len(ds) == N_GE and ds.studies == (("vd-sie",), ("vd-ge-a", "vd-ge-b"))
    assert ds[0][keys.IMAGE].shape == (1, 20, 20)
    philips = VendorDomainsDataset(store, VendorDomainsSpec(domains=("Philips", "GE")))
    assert philips.studies[0] == ("vd-phi",) and len(philips) == N_GE


def test_image_size_makes_domains_batchable(store):
    ds = VendorDomainsDataset(store, VendorDomainsSpec(image_size=16))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[keys.IMAGE].shape == (4, 1, 16, 16) and batch[keys.TARGET].shape == (4, 1, 16, 16)
    assert batch[keys.TARGET_LABEL].tolist() == [1, 1, 1, 1]
    assert float(batch[keys.TARGET].min()) >= -1.0 and float(batch[keys.TARGET].max()) <= 1.0


@pytest.mark.parametrize(("value", "domain", "expected"), [
    ("GE MEDICAL SYSTEMS", "GE", True),
    ("GE MEDICAL SYSTEMS", "ge medical systems", True),
    ("GEM", "GE", False),
    ("SIEMENS", "Siemens", True),
    ("Philips Medical Systems", "SIEMENS", False),
    (3.0, "3", True),
    (1.5, "3", False),
    (None, "GE", False),
    (float("nan"), "GE", False),
])
def test_domain_matching(value, domain, expected):
    assert domain_matches(value, domain) is expected


def test_missing_vendor_or_series_is_a_clear_error(store):
    with pytest.raises(MissingDomainError, match=rf"store {store} has no train study with series 'pre' and "
                                                 r"vendor 'HOLOGIC' \(values present: GE MEDICAL SYSTEMS, "
                                                 "Philips Medical Systems, SIEMENS\\)"):
        VendorDomainsDataset(store, VendorDomainsSpec(domains=("GE", "HOLOGIC")))
    with pytest.raises(MissingDomainError, match=rf"store {store} has no train study with series 'post_3'"):
        VendorDomainsDataset(store, VendorDomainsSpec(series="post_3"))
    with pytest.raises(MissingDomainError, match="vendor 'Philips'"):  # Philips has no post_1
        VendorDomainsDataset(store, VendorDomainsSpec(series="post_1", domains=("GE", "Philips")))
    with pytest.raises(ValueError, match="no column 'scanner'"):
        VendorDomainsDataset(store, VendorDomainsSpec(domain_column="scanner"))
    with pytest.raises(ValidationError, match="same value"):
        VendorDomainsSpec(domains=("GE", "ge"))
    with pytest.raises(RegistryError, match="vendor_domains"):
        build_dataset("vendor_domain", store, {})


def test_splits_come_from_the_catalog_and_leakage_raises(tmp_path, store):
    train = VendorDomainsDataset(store, VendorDomainsSpec())
    catalog = read_catalog(StoreLocation.from_url(store))
    used = set(catalog[catalog.study.isin([*train.studies[0], *train.studies[1]])].patient)
    assert used and not used & set(catalog[catalog.split != "train"].patient)  # no test patient in train
    with pytest.raises(MissingDomainError, match="no test study .* vendor 'GE'"):  # the test split is Siemens only
        VendorDomainsDataset(store, VendorDomainsSpec(split=Split.TEST))
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    loc = StoreLocation.from_url(str(copy))
    table = pq.read_table(copy / layout.CATALOG_FILE).to_pandas()
    table.loc[(table.study == "vd-sie") & (table.series == "post_1"), "split"] = "test"
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), sink)
    atomic_write_bytes(loc, layout.CATALOG_FILE, sink.getvalue())
    with pytest.raises(SplitLeakageError, match=f"train dataset also have test data.*{TRAIN[2]}"):
        VendorDomainsDataset(str(copy), VendorDomainsSpec())


def test_version_names_exactly_the_series_read(store):
    pre = VendorDomainsDataset(store, VendorDomainsSpec())
    assert pre.series_keys == (("vd-ge-a", "pre"), ("vd-ge-b", "pre"), ("vd-sie", "pre"))
    assert pre.version.startswith("dsv1:")
    assert VendorDomainsDataset(store, VendorDomainsSpec(series="post_1")).version != pre.version
    assert VendorDomainsDataset(store, VendorDomainsSpec(image_size=16)).version == pre.version


@pytest.mark.integration
@pytest.mark.slow  # ~20 s of S3 endpoint and worker start-up; paired_phases covers the shared base on S3 by default
def test_s3_store_through_dataloader_workers_equals_local(tmp_path, store):
    from breastflow.store.local_s3 import local_s3

    spec = VendorDomainsSpec(image_size=16)
    local = VendorDomainsDataset(store, spec)
    with local_s3() as s3:
        s3.make_bucket("data")
        _build("s3://data/store")
        remote = VendorDomainsDataset("s3://data/store", spec)
        assert remote.loc.remote and remote.version == local.version
        loader = torch.utils.data.DataLoader(remote, batch_size=4, num_workers=2)
        got = {k: (batch[keys.IMAGE][b], batch[keys.TARGET][b])
               for batch in loader for b, k in enumerate(batch[keys.KEY])}
    assert len(got) == len(local)
    for index in range(len(local)):
        item = local[index]
        assert torch.equal(got[item[keys.KEY]][0], item[keys.IMAGE])
        assert torch.equal(got[item[keys.KEY]][1], item[keys.TARGET])
