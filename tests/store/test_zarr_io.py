import json
import math

import dask.array as da
import numpy as np
import pytest
import zarr

from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import (
    ArrayLayout,
    Compression,
    Geometry,
    open_series_array,
    series_attrs,
    shard_aligned,
    stored_hash,
    volume_hash,
    write_mask,
    write_series,
)

GEOMETRY = Geometry(spacing_mm=(2.0, 0.7, 0.7), origin_mm=(-150.0, -120.0, 30.0),
                    direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))


def _volume(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -2000), min(info.max, 4095), size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize(
    ("shape", "dtype", "array_layout"),
    [
        ((37, 24, 20), np.uint16, ArrayLayout()),
        ((16, 8, 8), np.int16, ArrayLayout(shard_slices=4)),
        ((5, 9, 7), np.uint8, ArrayLayout(shard_slices=8, compression=Compression.BLOSC_LZ4_SHUFFLE)),
        ((12, 6, 6), np.int32, ArrayLayout(chunk_slices=2, shard_slices=6, compression=Compression.NONE)),
    ],
)
def test_local_roundtrip_is_lossless_and_sharded(tmp_path, shape, dtype, array_layout):
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    volume = _volume(shape, dtype)
    written = write_series(loc, "st1", "pre", volume, GEOMETRY, {"vendor": "ACME"}, array_layout)
    array = open_series_array(loc, "st1", "pre")
    assert array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(array[:], volume)
    assert array.chunks == (array_layout.chunk_slices, shape[1], shape[2])
    assert array.shards == (array_layout.shard_slices, shape[1], shape[2])
    shard_objects = list((tmp_path / "store" / layout.series_array("st1", "pre") / "c").iterdir())
    assert len(shard_objects) == math.ceil(shape[0] / array_layout.shard_slices)
    assert stored_hash(loc, "st1", "pre") == written.content_hash
    # the byte count computed from what was written equals zarr's own listing of the array
    assert written.stored_bytes == array.nbytes_stored()


def test_rewriting_a_series_into_an_existing_study_group_keeps_attributes(tmp_path):
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    write_series(loc, "st1", "pre", _volume((4, 5, 6), np.uint16), GEOMETRY, {"vendor": "ACME"})
    again = _volume((4, 5, 6), np.uint16, seed=1)
    write_series(loc, "st1", "pre", again, GEOMETRY, {"vendor": "ACME", "phase_offset_s": 0.0})
    np.testing.assert_array_equal(open_series_array(loc, "st1", "pre")[:], again)
    assert series_attrs(loc, "st1", "pre")["breastflow"]["phase_offset_s"] == 0.0


def test_hash_detects_a_single_changed_voxel():
    volume = _volume((4, 5, 6), np.uint16)
    changed = volume.copy()
    changed[2, 3, 4] ^= 1
    assert volume_hash([volume], volume.shape, volume.dtype) != volume_hash([changed], volume.shape, volume.dtype)
    slabs = [volume[:1], volume[1:]]
    assert volume_hash(slabs, volume.shape, volume.dtype) == volume_hash([volume], volume.shape, volume.dtype)


def test_ome_ngff_metadata_and_attributes(tmp_path):
    loc = StoreLocation.from_url(str(tmp_path / "s"))
    write_series(loc, "st1", "post_1", _volume((6, 4, 4), np.uint16), GEOMETRY, {"phase_offset_s": 91.0})
    meta = json.loads((tmp_path / "s" / "studies/st1/post_1/zarr.json").read_text())
    ome = meta["attributes"]["ome"]
    assert ome["version"] == "0.5"
    scales = ome["multiscales"][0]
    assert [a["name"] for a in scales["axes"]] == ["z", "y", "x"]
    assert scales["datasets"][0]["path"] == "0"
    transforms = scales["datasets"][0]["coordinateTransformations"]
    assert transforms[0] == {"type": "scale", "scale": [2.0, 0.7, 0.7]}
    assert transforms[1]["translation"] == [30.0, -120.0, -150.0]
    attrs = series_attrs(loc, "st1", "post_1")["breastflow"]
    assert attrs["phase_offset_s"] == 91.0 and attrs["shape"] == [6, 4, 4]
    assert attrs["content_hash"].startswith("sha256:")
    # the image opens as plain zarr v3 as a viewer would
    image = zarr.open_group(str(tmp_path / "s" / "studies/st1/post_1"), mode="r")
    assert image["0"].metadata.dimension_names == ("z", "y", "x")


@pytest.mark.integration
def test_s3_roundtrip_through_s3fs(s3_store_url):
    loc = StoreLocation.from_url(s3_store_url)
    assert loc.storage_options["client_kwargs"]["endpoint_url"].startswith("http://127.0.0.1:")
    volume = _volume((33, 16, 12), np.int16)
    written = write_series(loc, "st2", "pre", volume, GEOMETRY, {})
    np.testing.assert_array_equal(open_series_array(loc, "st2", "pre")[:], volume)
    objects = loc.filesystem().find(loc.fs_path(layout.series_array("st2", "pre")))
    assert sum("/c/" in o for o in objects) == 3  # 33 slices / 16 per shard
    assert stored_hash(loc, "st2", "pre") == written.content_hash


def test_mask_beside_series(tmp_path):
    loc = StoreLocation.from_url(str(tmp_path / "s"))
    labels = (np.arange(5 * 4 * 4).reshape(5, 4, 4) % 3).astype(np.uint8)
    write_mask(loc, "st1", "lesion", labels, GEOMETRY, {"source": "phantom"})
    mask = zarr.open_array(str(tmp_path / "s" / layout.mask_group("st1", "lesion") / "0"), mode="r")
    np.testing.assert_array_equal(mask[:], labels)


@pytest.mark.parametrize(("shape", "dtype"), [((2, 3), np.uint16), ((2, 2, 2), np.float32)])
def test_bad_volumes_are_refused(tmp_path, shape, dtype):
    with pytest.raises(ValueError, match="expected"):
        write_series(StoreLocation.from_url(str(tmp_path)), "st1", "pre", np.zeros(shape, dtype), GEOMETRY, {})


def test_shard_alignment_makes_parallel_dask_writes_exact(tmp_path):
    volume = _volume((40, 16, 16), np.uint16, seed=3)
    target = zarr.create_array(str(tmp_path / "a"), shape=volume.shape, dtype=volume.dtype,
                               chunks=(1, 16, 16), shards=(8, 16, 16), fill_value=0)
    source = da.from_array(volume, chunks=(3, 16, 16))  # misaligned on purpose
    aligned = shard_aligned(source, 8)
    assert all(c == 8 for c in aligned.chunks[0])
    da.store(aligned, target, lock=False, scheduler="threads")
    np.testing.assert_array_equal(target[:], volume)


def test_layout_refuses_shards_that_are_not_chunk_multiples():
    with pytest.raises(ValueError, match="multiple"):
        ArrayLayout(chunk_slices=3, shard_slices=8)
