"""The data layer over a store made by the real ingest of the project's phantom (DICOM -> store)."""

from __future__ import annotations

import pytest
import torch

from breastflow.data import keys
from breastflow.data.datasets import build_dataset
from breastflow.data.intensity import (
    UNIT_SERIES,
    Rescale,
    UnitConfig,
    intensity_unit,
    unit_slices,
)
from breastflow.data.slices import SliceReader
from breastflow.store.catalog import read_catalog
from breastflow.store.commit import read_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import series_attrs

KEY = "data-tests-pseudonym-key-0123456789abcdef"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.ingest.report import ExitStatus
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig

    base = tmp_path_factory.mktemp("ingested")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BREASTFLOW_PSEUDONYM_KEY", KEY)
        write_cohort(base / "cohort", PhantomConfig(studies=3, seed=1, t2_fraction=0.0))
        report = run_ingest(str(base / "cohort" / "dicom"), str(base / "store"),
                            IngestConfig(cluster=ClusterConfig(workers=1, processes=False)))
    assert report.exit_status() is ExitStatus.SUCCESS, report.to_operator_dict()
    return str(base / "store")


def test_ingest_records_the_unit_a_loader_would_compute(store):
    loc = StoreLocation.from_url(store)
    catalog = read_catalog(loc)
    reader = SliceReader(loc)
    config = UnitConfig()
    for study in catalog.study.unique():
        record = read_commit(loc, study, UNIT_SERIES)
        assert record.intensity_unit_rule == config.rule_id()
        sample = reader.read_slices(study, UNIT_SERIES, unit_slices(record.shape[0], config.max_slices))
        rescale = Rescale.from_attrs(series_attrs(loc, study, UNIT_SERIES)["breastflow"])
        assert record.intensity_unit == pytest.approx(intensity_unit(sample, rescale, config))
        assert read_commit(loc, study, "post_1").intensity_unit is None


def test_phantom_lesions_enhance_in_the_paired_items(store):
    catalog = read_catalog(StoreLocation.from_url(store))
    checked = 0
    for split in sorted(catalog.split.unique()):
        ds = build_dataset("paired_phases", store, {"split": split, "targets": ["post_1", "post_2", "post_3"],
                                                     "slices": "lesion"})
        assert len(ds) > 0 and ds.version.startswith("dsv1:")
        for index in range(0, len(ds), 3):
            item = ds[index]
            lesion = item[keys.MASK][0] > 0
            if lesion.sum() < 4:
                continue
            pre, post = item[keys.IMAGE][0][lesion].mean(), item[keys.TARGET][:, lesion].mean(dim=1)
            assert bool((post > pre).all()), item[keys.KEY]  # every phase brighter than pre in the lesion
            checked += 1
        assert torch.isfinite(ds[0][keys.TARGET]).all()
    assert checked >= 3
