"""``mammograms`` over a tiny store of mammography views: size, orientation, intensity rule, labels, splits, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_store_builder import (
    GEOMETRY,
    LAYOUT,
    SPLITS,
    PhantomStudy,
    build_store,
    patients,
    write_study,
)
from pydantic import ValidationError

from breastflow.data import keys
from breastflow.data.datasets import DatasetError, build_dataset
from breastflow.data.datasets.mammograms import (
    MammogramsDataset,
    MammogramsSpec,
    MammoViewCode,
)
from breastflow.store.annotation_commit import (
    AnnotationRecord,
    LesionBox,
    write_annotation_commit,
)
from breastflow.store.catalog import read_catalog, rebuild_catalog
from breastflow.store.commit import SeriesRecord, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split
from breastflow.store.zarr_io import write_series

TRAIN = patients(Split.TRAIN, 3, prefix="mm")
TEST = patients(Split.TEST, 1, prefix="mm")
H, W = 40, 30  # portrait, as full-field detectors
VIEWS = ("mg_l_cc", "mg_l_mlo", "mg_r_cc", "mg_r_mlo")
MAX = 4095
LESION = LesionBox(lesion_id=1, series="mg_r_cc", start_row=10, end_row=17, start_column=20, end_column=27,
                   lesion_class="malignant")


def view_image(series: str, seed: int) -> np.ndarray:
    """A breast against the chest wall, denser towards it (left views: chest wall at column 0; right: mirrored)."""
    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    breast = (xx / (0.8 * W)) ** 2 + ((yy - H / 2) / (0.45 * H)) ** 2 < 1
    tissue = 3000.0 - 60.0 * xx + np.random.default_rng(seed).normal(0, 20, (H, W))
    image = np.where(breast, tissue, 50.0)
    return image[:, ::-1] if series.startswith("mg_r") else image


def write_mammo_study(loc: StoreLocation, study: str, patient: str, photometric: str = "MONOCHROME2",
                      views: tuple[str, ...] = VIEWS, seed: int = 0) -> None:
    """Commit one mammography study as ingest stores it: (1, rows, cols) uint16, MONOCHROME1 not inverted."""
    for series in views:
        image = view_image(series, seed)
        raw = np.round(MAX - image if photometric == "MONOCHROME1" else image).astype(np.uint16)[None]
        laterality, view = series.split("_")[1].upper(), series.split("_")[2].upper()
        attrs = {"study": study, "patient": patient, "series": series, "view": view, "laterality": laterality,
                 "rescale_slope": 1.0, "rescale_intercept": 0.0, "geometry": "projection",
                 "dicom": {"photometric": photometric, "bits_stored": 12}}
        written = write_series(loc, study, series, raw, GEOMETRY, attrs, LAYOUT)
        write_commit(loc, SeriesRecord(
            study=study, patient=patient, series=series, source_series=f"src-{study}-{series}", modality="MG",
            vendor="GE MEDICAL SYSTEMS", shape=written.shape, dtype=written.dtype, spacing_mm=GEOMETRY.spacing_mm,
            content_hash=written.content_hash, source_fingerprint=f"fp-{study}", n_source_files=1,
            source_bytes=int(raw.nbytes), breastflow_version="test"))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    loc = StoreLocation.from_url(str(tmp_path_factory.mktemp("mammo") / "store"))
    write_mammo_study(loc, "mm-a", TRAIN[0])
    write_mammo_study(loc, "mm-b", TRAIN[1], photometric="MONOCHROME1")  # same content as mm-a, inverted values
    write_mammo_study(loc, "mm-t", TEST[0], views=("mg_l_cc", "mg_r_mlo"), seed=5)
    write_study(loc, PhantomStudy("mm-mri", TRAIN[2], shape=(4, 16, 16), phases=("pre",), box=None))
    write_annotation_commit(loc, AnnotationRecord(study="mm-a", patient=TRAIN[0], source_format="phantom",
                                                  boxes=(LESION,), n_lesions=1, lesion_classes=("malignant",),
                                                  source_fingerprint="ann", breastflow_version="test"))
    rebuild_catalog(loc, SPLITS)
    return loc.url


def test_items_are_square_power_of_two_images_with_view_labels(store):
    ds = MammogramsDataset(store, MammogramsSpec(image_size=16))
    assert [(s, series) for s, series, *_ in ds.items] == [(s, v) for s in ("mm-a", "mm-b") for v in VIEWS]
    for index, item in enumerate(ds):
        assert set(item) == {keys.IMAGE, keys.MASK, keys.LABEL, keys.KEY}
        assert item[keys.IMAGE].shape == (1, 16, 16) and item[keys.IMAGE].dtype == torch.float32
        assert item[keys.MASK].shape == (1, 16, 16) and item[keys.MASK].dtype == torch.uint8
        assert -1.0 <= float(item[keys.IMAGE].min()) and float(item[keys.IMAGE].max()) <= 1.0
        study, series, view, laterality = ds.items[index]
        assert item[keys.KEY] == f"{study}/{series}"
        assert int(item[keys.LABEL]) == MammoViewCode[f"{laterality}_{view}"]
    assert [int(ds[i][keys.LABEL]) for i in range(4)] == [0, 1, 2, 3]
    assert MammogramsDataset(store, MammogramsSpec()).__getitem__(0)[keys.IMAGE].shape == (1, 256, 256)
    cc = build_dataset("mammograms", store, {"views": ["cc"], "image_size": 32})
    assert [series for _, series, *_ in cc.items] == ["mg_l_cc", "mg_r_cc"] * 2


def test_intensity_is_the_documented_percentile_rule(store):
    ds = MammogramsDataset(store, MammogramsSpec())
    raw = np.round(view_image("mg_l_cc", 0)).astype(np.uint16)
    lo, hi = np.percentile(raw.astype(np.float64), [0.5, 99.5])
    expected = np.clip(2 * (raw - lo) / (hi - lo) - 1, -1, 1)
    np.testing.assert_allclose(ds.normalise("mm-a", "mg_l_cc", raw), expected, atol=1e-5)
    # MONOCHROME1 (mm-b stores MAX - value) is negated after scaling: the same picture as mm-a
    inverted = MAX - raw
    np.testing.assert_allclose(ds.normalise("mm-b", "mg_l_cc", inverted), expected, atol=1e-5)
    assert ds.photometric("mm-b", "mg_l_cc") == "MONOCHROME1"
    for series in VIEWS:
        a, b = ds[ds.items.index(("mm-a", series, *_view(series)))], ds[ds.items.index(("mm-b", series, *_view(series)))]
        np.testing.assert_allclose(a[keys.IMAGE].numpy(), b[keys.IMAGE].numpy(), atol=1e-5)
    narrow = MammogramsDataset(store, MammogramsSpec(intensity={"low_percentile": 10, "high_percentile": 90}))
    assert (narrow.normalise("mm-a", "mg_l_cc", raw) == 1.0).mean() > (expected == 1.0).mean()


def _view(series: str) -> tuple[str, str]:
    return series.split("_")[2].upper(), series.split("_")[1].upper()


def test_right_views_are_flipped_to_chest_wall_left_and_padded_on_the_nipple_side(store):
    ds = MammogramsDataset(store, MammogramsSpec(image_size=16))  # 40 x 30 fits as 16 x 12, 4 columns of air
    as_stored = MammogramsDataset(store, MammogramsSpec(image_size=16, orient=False))
    for index, (_, series, _, laterality) in enumerate(ds.items):
        image = ds[index][keys.IMAGE][0]
        assert bool((image[:, 12:] == -1.0).all())  # padding on the right
        assert float(image[:, :6].mean()) > float(image[:, 6:12].mean()) + 0.3  # dense chest wall left
        stored = as_stored[index][keys.IMAGE][0]
        if laterality == "R":
            assert float(stored[:, :6].mean()) < float(stored[:, 6:12].mean())  # as hung: chest wall right
        else:
            assert torch.equal(stored, image)


def test_lesion_boxes_become_a_mask_transformed_as_the_image(store):
    oriented = MammogramsDataset(store, MammogramsSpec(image_size=16))
    stored = MammogramsDataset(store, MammogramsSpec(image_size=16, orient=False))
    index = oriented.items.index(("mm-a", "mg_r_cc", "CC", "R"))
    flipped, plain = oriented[index][keys.MASK][0], stored[index][keys.MASK][0]
    rows, cols = np.nonzero(flipped.numpy())
    assert flipped.sum() > 0 and set(flipped.unique().tolist()) == {0, 1}
    assert cols.max() < 6 and 3 <= rows.min() and rows.max() <= 8  # box cols 20..27 of 30 -> 2..9 after the flip
    assert np.nonzero(plain.numpy())[1].min() >= 6
    other = oriented.items.index(("mm-b", "mg_r_cc", "CC", "R"))
    assert int(oriented[other][keys.MASK].sum()) == 0  # no annotations: zeros
    assert ("mm-a", "annotations") in oriented.series_keys


def test_splits_come_from_the_catalog(store):
    train = MammogramsDataset(store, MammogramsSpec(image_size=16))
    catalog = read_catalog(StoreLocation.from_url(store))
    used = set(catalog[catalog.study.isin({s for s, *_ in train.items})].patient)
    assert used and not used & set(catalog[catalog.split != "train"].patient)
    test = MammogramsDataset(store, MammogramsSpec(split=Split.TEST, image_size=16))
    assert [(s, series) for s, series, *_ in test.items] == [("mm-t", "mg_l_cc"), ("mm-t", "mg_r_mlo")]
    with pytest.raises(DatasetError, match=f"store {store} has no val studies"):
        MammogramsDataset(store, MammogramsSpec(split=Split.VAL))


def test_a_store_without_mammograms_and_bad_specs_are_clear_errors(tmp_path):
    mri = str(tmp_path / "mri")
    build_store(mri, [PhantomStudy("mri-a", TRAIN[0], shape=(4, 16, 16), phases=("pre", "post_1"), box=None)])
    with pytest.raises(DatasetError, match=rf"mammograms: store {mri} has no train mammography views CC/MLO "
                                           r"\(series mg_<l\|r>_<cc\|mlo>; series present: post_1, pre\)"):
        MammogramsDataset(mri, MammogramsSpec())
    with pytest.raises(ValidationError, match="image_size 24 is not a power of two"):
        MammogramsSpec(image_size=24)
    with pytest.raises(ValidationError, match="subset of"):
        MammogramsSpec(views=("AX",))
    with pytest.raises(ValidationError, match="must be below"):
        MammogramsSpec(intensity={"low_percentile": 90, "high_percentile": 10})
