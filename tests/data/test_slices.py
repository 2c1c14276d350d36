"""Batched slice reads compared voxel-for-voxel with the written volume and with zarr-python's reads."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import numpy as np
import pytest
import zarr

from breastflow.data.slices import SlicePick, SliceReader, read_slices
from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.local_s3 import local_s3
from breastflow.store.zarr_io import (
    ArrayLayout,
    Compression,
    Geometry,
    open_series_array,
    write_series,
)

GEOMETRY = Geometry(spacing_mm=(2.0, 0.7, 0.7), origin_mm=(0.0, 0.0, 0.0),
                    direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))


def _volume(shape: tuple[int, int, int], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    smooth = np.cumsum(rng.integers(-3, 4, size=shape), axis=2)  # compressible, like images
    return np.clip(smooth + 200, max(info.min, -2000), min(info.max, 4095)).astype(dtype)


# (shape, dtype, layout): chunking, sharding, every compressor, partial last shard
CASES = [
    ((37, 24, 20), np.uint16, ArrayLayout()),
    ((37, 24, 20), np.int16, ArrayLayout(compression=Compression.BLOSC_ZSTD_BITSHUFFLE, shard_slices=8)),
    ((10, 9, 7), np.uint8, ArrayLayout(shard_slices=4, compression=Compression.BLOSC_LZ4_SHUFFLE)),
    ((12, 6, 6), np.int32, ArrayLayout(chunk_slices=2, shard_slices=6, compression=Compression.NONE)),
    ((21, 16, 16), np.uint16, ArrayLayout(chunk_slices=4, shard_slices=8)),
]


@pytest.mark.parametrize(("shape", "dtype", "array_layout"), CASES)
def test_read_slices_matches_volume_and_zarr(tmp_path: Path, shape, dtype, array_layout) -> None:
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    volume = _volume(shape, dtype)
    write_series(loc, "st1", "pre", volume, GEOMETRY, {}, array_layout)
    reader = SliceReader(loc)
    indices = [shape[0] - 1, 0, 5, 5, 3, shape[0] // 2]  # unsorted, repeated, first/last
    got = reader.read_slices("st1", "pre", indices)
    assert got.shape == (len(indices), shape[1], shape[2]) and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, volume[indices])
    reference = open_series_array(loc, "st1", "pre").get_orthogonal_selection(
        (np.array(sorted(set(indices))), slice(None), slice(None)))
    np.testing.assert_array_equal(reader.read_slices("st1", "pre", sorted(set(indices))), reference)
    assert reader._open("st1", "pre").direct  # the store's own layouts take the direct path
    assert reader.read_slices("st1", "pre", []).shape == (0, shape[1], shape[2])


def test_read_picks_across_series_and_module_function(tmp_path: Path) -> None:
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    small, large = _volume((9, 8, 6), np.uint16, 1), _volume((20, 12, 10), np.int16, 2)
    write_series(loc, "st1", "pre", small, GEOMETRY, {}, ArrayLayout(shard_slices=4))
    write_series(loc, "st2", "post_1", large, GEOMETRY, {})
    picks = [SlicePick("st2", "post_1", 19), ("st1", "pre", 8), ("st2", "post_1", 0), ("st1", "pre", 8)]
    got = SliceReader(loc).read_picks(picks)
    for (study, _, z), image in zip(picks, got, strict=True):
        np.testing.assert_array_equal(image, (small if study == "st1" else large)[z])
    np.testing.assert_array_equal(read_slices(loc, "st2", "post_1", [3, 1]), large[[3, 1]])


def test_empty_chunks_read_as_fill_value_and_unsharded_arrays_fall_back(tmp_path: Path) -> None:
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    volume = _volume((10, 8, 8), np.uint16)
    volume[2:7] = 0
    root = zarr.open_group(loc.url, mode="a")
    # zarr's default skips all-zero chunks: their index entries are empty (asserted below)
    sparse = root.create_array(layout.series_array("st1", "pre"), shape=volume.shape, dtype=volume.dtype,
                               chunks=(1, 8, 8), shards=(4, 8, 8), fill_value=0,
                               compressors=Compression.BLOSC_LZ4HC_BITSHUFFLE.codecs(1))
    sparse[:] = volume
    plain = root.create_array(layout.series_array("st1", "t2"), shape=volume.shape, dtype=volume.dtype,
                              chunks=(2, 8, 8), fill_value=0)
    plain[:] = volume
    reader = SliceReader(loc)
    np.testing.assert_array_equal(reader.read_slices("st1", "pre", range(10)), volume)
    assert (reader._open("st1", "pre").index[1][:, 0] == np.uint64(2**64 - 1)).sum() >= 2
    assert reader._open("st1", "pre").direct and not reader._open("st1", "t2").direct
    np.testing.assert_array_equal(reader.read_slices("st1", "t2", [9, 0, 4]), volume[[9, 0, 4]])


def test_bad_requests_and_corrupt_index_fail_clearly(tmp_path: Path) -> None:
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    write_series(loc, "st1", "pre", _volume((8, 4, 4), np.uint16), GEOMETRY, {}, ArrayLayout(shard_slices=4))
    reader = SliceReader(loc)
    with pytest.raises(IndexError, match="slice 8 is outside series st1/pre with 8 slices"):
        reader.read_slices("st1", "pre", [0, 8])
    with pytest.raises(IndexError, match="slice -1"):
        reader.read_slices("st1", "pre", [-1])
    with pytest.raises(FileNotFoundError, match="st1/nope"):
        reader.read_slices("st1", "nope", [0])
    shard = tmp_path / "store" / layout.series_array("st1", "pre") / "c" / "1" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # inside the index
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC32C"):
        SliceReader(loc).read_slices("st1", "pre", [5])
    with pytest.raises(ValueError, match="max_open"):
        SliceReader(loc, max_open=0)


def test_reader_pickles_with_empty_caches_and_evicts(tmp_path: Path) -> None:
    loc = StoreLocation.from_url(str(tmp_path / "store"))
    volumes = {name: _volume((5, 4, 4), np.uint16, seed) for seed, name in enumerate(("pre", "post_1", "post_2"))}
    for name, volume in volumes.items():
        write_series(loc, "st1", name, volume, GEOMETRY, {})
    reader = SliceReader(loc, max_open=2)
    for name in volumes:
        reader.read_slices("st1", name, [1])
    assert list(reader._series) == [("st1", "post_1"), ("st1", "post_2")]
    copy = pickle.loads(pickle.dumps(reader))
    assert not copy._series and copy.max_open == 2
    np.testing.assert_array_equal(copy.read_slices("st1", "pre", [4, 2]), volumes["pre"][[4, 2]])


@pytest.mark.integration
def test_s3_reads_match_local(tmp_path: Path) -> None:
    volume = _volume((20, 16, 12), np.int16, 3)
    with local_s3() as server:  # s3fs finds the endpoint through the environment
        bucket = f"slices-{uuid.uuid4().hex[:8]}"
        server.make_bucket(bucket)
        remote = StoreLocation.from_url(f"s3://{bucket}/store")
        assert remote.storage_options["client_kwargs"]["endpoint_url"].startswith("http://127.0.0.1:")
        write_series(remote, "st1", "pre", volume, GEOMETRY, {}, ArrayLayout(shard_slices=8))
        reader = SliceReader(remote)
        assert reader._open("st1", "pre").direct
        np.testing.assert_array_equal(reader.read_slices("st1", "pre", [19, 0, 8, 7]), volume[[19, 0, 8, 7]])
        got = reader.read_picks([("st1", "pre", 3), ("st1", "pre", 16)])
        np.testing.assert_array_equal(np.stack(got), volume[[3, 16]])
