"""Direct shard writing is byte for byte zarr-python's, and its read-back check catches torn writes."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from breastflow.store.fs import StoreLocation
from breastflow.store.shard_io import encode_shard, plain_layout, shard_mismatch
from breastflow.store.zarr_io import (
    ArrayLayout,
    Compression,
    Geometry,
    stored_mismatch,
    write_series,
)

CASES = [  # (compression, chunk_slices, shard_slices, z, dtype)
    (Compression.BLOSC_LZ4HC_BITSHUFFLE, 1, 16, 37, "uint16"),
    (Compression.BLOSC_LZ4HC_BITSHUFFLE, 4, 16, 37, "int16"),
    (Compression.BLOSC_ZSTD_SHUFFLE, 2, 4, 5, "uint8"),
    (Compression.NONE, 1, 16, 16, "int32"),
    (Compression.NONE, 3, 6, 4, "uint16"),
]


def _zarr_array(path, volume, compression, chunk_slices, shard_slices):
    _z, y, x = volume.shape
    array = zarr.create_array(store=str(path), shape=volume.shape, dtype=volume.dtype, chunks=(chunk_slices, y, x),
                              shards=(shard_slices, y, x), compressors=compression.codecs(1), fill_value=0,
                              config={"write_empty_chunks": True})
    array[:] = volume
    return array


@pytest.mark.parametrize(("compression", "chunk_slices", "shard_slices", "z", "dtype"), CASES)
def test_encoded_shards_equal_zarr_python_bytes(tmp_path, compression, chunk_slices, shard_slices, z, dtype):
    volume = np.random.default_rng(z).integers(0, 120, (z, 12, 10)).astype(dtype)
    array = _zarr_array(tmp_path / "ref.zarr", volume, compression, chunk_slices, shard_slices)
    plain = plain_layout(array)
    assert plain is not None
    for i, start in enumerate(range(0, z, shard_slices)):
        stored = (tmp_path / "ref.zarr" / "c" / str(i) / "0" / "0").read_bytes()
        slab = volume[start:start + shard_slices]
        assert encode_shard(slab, plain) == stored
        assert shard_mismatch(stored, slab, plain) is None


def _shard(tmp_path):
    volume = np.random.default_rng(0).integers(0, 4000, (16, 12, 10)).astype("uint16")
    array = _zarr_array(tmp_path / "a.zarr", volume, Compression.BLOSC_LZ4HC_BITSHUFFLE, 1, 16)
    plain = plain_layout(array)
    return encode_shard(volume, plain), volume, plain


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda b: b[:-1], "CRC32C"),                      # last byte lost
    (lambda b: b[: len(b) // 2], "CRC32C"),            # torn in the middle: index gone
    (lambda b: b[:10], "shorter than its index"),
    (lambda b: b[:5] + bytes([b[5] ^ 0xFF]) + b[6:], "chunk 0"),  # corrupt first chunk's Blosc header
    (lambda b: b"\0" * len(b), "CRC32C"),             # zero-filled (preallocated, never written)
])
def test_torn_or_corrupt_shards_fail_verification(tmp_path, damage, expected):
    data, volume, plain = _shard(tmp_path)
    problem = shard_mismatch(damage(data), volume, plain)
    assert problem is not None and expected in problem


def test_other_voxels_fail_verification(tmp_path):
    data, volume, plain = _shard(tmp_path)
    other = volume.copy()
    other[7, 3, 4] += 1
    assert "chunk 7 voxels differ" in shard_mismatch(data, other, plain)


def test_layouts_zarr_must_handle_are_declined(tmp_path):
    volume = np.zeros((4, 6, 6), "uint16")
    unsharded = zarr.create_array(store=str(tmp_path / "u.zarr"), shape=volume.shape, dtype="uint16",
                                  chunks=(1, 6, 6))
    assert plain_layout(unsharded) is None
    tiled = zarr.create_array(store=str(tmp_path / "t.zarr"), shape=volume.shape, dtype="uint16",
                              chunks=(1, 3, 6), shards=(2, 6, 6))
    assert plain_layout(tiled) is None


def test_write_series_verifies_through_storage_and_sees_a_torn_shard(tmp_path):
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    volume = np.random.default_rng(1).integers(0, 900, (20, 16, 12)).astype("int16")
    geometry = Geometry(spacing_mm=(2.0, 0.7, 0.7), origin_mm=(0.0, 0.0, 0.0),
                        direction=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    write_series(loc, "stu-a", "pre", volume, geometry, {}, ArrayLayout())
    assert stored_mismatch(loc, "stu-a", "pre", volume) is None
    shards = sorted((tmp_path / "store").rglob("c/1/0/0"))
    assert len(shards) == 1
    shards[0].write_bytes(shards[0].read_bytes()[:-100])  # a write cut short
    assert "slices 16..19" in stored_mismatch(loc, "stu-a", "pre", volume)
    shards[0].unlink()
    assert "missing" in stored_mismatch(loc, "stu-a", "pre", volume)
