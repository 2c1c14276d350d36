"""Zarr v3 writing and reading of one series (and masks) with OME-Zarr metadata.

Each series is an OME-Zarr (NGFF 0.5) image group holding one array ``0`` of
shape ``(Z, Y, X)`` in the native integer dtype (raw values, lossless). Inner
chunks are one axial slice ``(1, Y, X)`` - what a training loader reads - and
chunks are packed into shards of ``shard_slices`` slices so object storage
holds a few large objects instead of thousands of tiny ones. Compression is
Blosc/LZ4HC level 1 with bit-shuffle (chosen by measurement, see
docs/store.md: within 3 % of zstd's ratio, 2.6x faster to decode, which is
what random-slice training reads pay for).

A shard is only ever written whole, by one writer: writing pieces smaller than
a shard from several tasks would read-modify-write the same object
concurrently and silently lose data. :func:`shard_aligned` rechunks a Dask
array so its blocks are exactly the shards.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np
import zarr
from pydantic import BaseModel, ConfigDict, Field
from zarr.codecs import BloscCodec, BloscShuffle

from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.shard_io import (
    encode_shard,
    plain_layout,
    read_object,
    shard_mismatch,
    write_object,
)

NGFF_VERSION = "0.5"
ZARR_JSON = "zarr.json"  # Zarr v3 metadata document of a node
FAULT_ENV = "BREASTFLOW_FAULT_KILL_AFTER_SHARDS"
FAULT_ONCE_ENV = "BREASTFLOW_FAULT_ONCE_FILE"


class Compression(str, Enum):
    """Lossless compressors offered for series arrays (see docs/store.md for the measurement)."""

    BLOSC_LZ4HC_BITSHUFFLE = "blosc-lz4hc-bitshuffle"
    BLOSC_LZ4_BITSHUFFLE = "blosc-lz4-bitshuffle"
    BLOSC_ZSTD_BITSHUFFLE = "blosc-zstd-bitshuffle"
    BLOSC_ZSTD_SHUFFLE = "blosc-zstd-shuffle"
    BLOSC_LZ4_SHUFFLE = "blosc-lz4-shuffle"
    NONE = "none"

    def codecs(self, level: int) -> list:
        if self is Compression.NONE:
            return []
        cname, shuffle = {
            Compression.BLOSC_LZ4HC_BITSHUFFLE: ("lz4hc", BloscShuffle.bitshuffle),
            Compression.BLOSC_LZ4_BITSHUFFLE: ("lz4", BloscShuffle.bitshuffle),
            Compression.BLOSC_ZSTD_BITSHUFFLE: ("zstd", BloscShuffle.bitshuffle),
            Compression.BLOSC_ZSTD_SHUFFLE: ("zstd", BloscShuffle.shuffle),
            Compression.BLOSC_LZ4_SHUFFLE: ("lz4", BloscShuffle.shuffle),
        }[self]
        return [BloscCodec(cname=cname, clevel=level, shuffle=shuffle)]


class ArrayLayout(BaseModel):
    """How a series array is chunked, sharded and compressed.

    Attributes:
        chunk_slices: axial slices per inner chunk (the unit a reader decodes).
        shard_slices: axial slices per shard (the unit stored as one object);
            a multiple of ``chunk_slices``.
        compression: lossless compressor.
        level: compression level.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_slices: int = Field(default=1, ge=1)
    shard_slices: int = Field(default=16, ge=1)
    compression: Compression = Compression.BLOSC_LZ4HC_BITSHUFFLE
    level: int = Field(default=1, ge=0, le=9)

    def model_post_init(self, _context: object) -> None:
        if self.shard_slices % self.chunk_slices:
            raise ValueError(
                f"shard_slices={self.shard_slices} must be a multiple of chunk_slices={self.chunk_slices}"
            )


@dataclass(frozen=True)
class Geometry:
    """Physical placement of a ``(Z, Y, X)`` volume.

    Attributes:
        spacing_mm: voxel size along (Z, Y, X) in mm.
        origin_mm: patient-space position (x, y, z) of voxel (0, 0, 0) in mm.
        direction: 3x3 row-major direction cosines; rows are the X (column), Y (row)
            and Z (slice normal) axes in patient space (LPS).
    """

    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]


@dataclass(frozen=True)
class WrittenSeries:
    """What :func:`write_series` wrote.

    Attributes:
        path: group path below the store root.
        shape: array shape ``(Z, Y, X)``.
        dtype: numpy dtype name.
        content_hash: ``sha256:`` hex digest of :func:`volume_hash` of the data.
        nbytes: raw size in bytes; stored_bytes: size on storage after compression.
    """

    path: str
    shape: tuple[int, int, int]
    dtype: str
    content_hash: str
    nbytes: int
    stored_bytes: int


def volume_hash(slabs: Iterator[np.ndarray], shape: tuple[int, ...], dtype: np.dtype) -> str:
    """Content hash of a volume fed slab by slab along Z (so it never needs the whole array).

    The digest covers shape, dtype (little-endian) and the C-order bytes.
    C-contiguous little-endian slabs are hashed in place (no copy).
    """
    little = np.dtype(dtype).newbyteorder("<")
    digest = hashlib.sha256(f"{tuple(int(n) for n in shape)}|{little.str}".encode())
    for slab in slabs:
        data = np.ascontiguousarray(slab, dtype=little)
        digest.update(memoryview(data).cast("B") if data.size else b"")
    return "sha256:" + digest.hexdigest()


def ngff_multiscales(name: str, geometry: Geometry) -> dict:
    """OME-Zarr 0.5 ``ome`` attribute block for a single-level ``(Z, Y, X)`` image.

    The translation is the origin projected on the volume axes, which is exact
    for axis-aligned (axial) acquisitions; the full affine lives in the
    ``breastflow`` attributes (``direction``, ``origin_mm``).
    """
    sz, sy, sx = (float(v) for v in geometry.spacing_mm)
    d = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    origin = np.asarray(geometry.origin_mm, dtype=float)
    tx, ty, tz = (float(v) for v in d @ origin)
    axes = [{"name": n, "type": "space", "unit": "millimeter"} for n in ("z", "y", "x")]
    return {
        "version": NGFF_VERSION,
        "multiscales": [{
            "name": name,
            "axes": axes,
            "datasets": [{
                "path": layout.FULL_RESOLUTION,
                "coordinateTransformations": [
                    {"type": "scale", "scale": [sz, sy, sx]},
                    {"type": "translation", "translation": [tz, ty, tx]},
                ],
            }],
        }],
    }


def open_root(loc: StoreLocation, mode: str = "a") -> zarr.Group:
    """Open (creating if needed) the store's root group and stamp its format version."""
    root = zarr.open_group(loc.url, mode=mode, storage_options=loc.storage_options or None, zarr_format=3)
    if mode != "r" and layout.ROOT_ATTR not in root.attrs:
        root.attrs[layout.ROOT_ATTR] = {"format_version": layout.STORE_FORMAT_VERSION}
    return root


def _maybe_inject_fault(shards_written: int) -> None:
    """Fault injection for crash tests: SIGKILL this process after N shards when asked.

    ``BREASTFLOW_FAULT_KILL_AFTER_SHARDS=N`` kills the writing process after its
    N-th shard; with ``BREASTFLOW_FAULT_ONCE_FILE=path`` only the first writer to
    create ``path`` dies (one crash per test). Unset in production.
    """
    limit = os.environ.get(FAULT_ENV)
    if not limit or shards_written < int(limit):
        return
    once = os.environ.get(FAULT_ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def write_series(
    loc: StoreLocation,
    study: str,
    series: str,
    volume: np.ndarray,
    geometry: Geometry,
    attrs: dict,
    array_layout: ArrayLayout = ArrayLayout(),
    on_shard: Callable[[int], None] | None = None,
) -> WrittenSeries:
    """Write one series as an OME-Zarr image group, shard by shard (overwrites a previous attempt).

    The caller commits the series afterwards (see :mod:`breastflow.store.commit`);
    until then it is invisible to the catalog.

    Args:
        loc: the store.
        study: study pseudonym; series: series role name (see :mod:`layout`).
        volume: ``(Z, Y, X)`` integer array (native dtype, rescale already applied).
        geometry: spacing/origin/direction of the volume.
        attrs: PHI-free attributes stored under ``attrs["breastflow"]``; the
            content hash, shape, dtype and geometry are added here.
        array_layout: chunking, sharding and compression.
        on_shard: called with the number of shards written so far (progress).

    Raises:
        ValueError: ``volume`` is not 3-D or not of an integer/boolean dtype.
    """
    return _write_image_group(loc, layout.series_group(study, series), f"{study}/{series}",
                              volume, geometry, attrs, array_layout, on_shard)


def write_mask(loc: StoreLocation, study: str, mask: str, labels: np.ndarray, geometry: Geometry,
               attrs: dict, array_layout: ArrayLayout = ArrayLayout()) -> WrittenSeries:
    """Write a ``(Z, Y, X)`` label mask beside a study's series (uint8, same chunking).

    Raises:
        ValueError: ``labels`` is not 3-D or has values outside 0..255.
    """
    if labels.ndim == 3 and labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"mask {study}/{mask}: labels must lie in 0..255")
    return _write_image_group(loc, layout.mask_group(study, mask), f"{study}/{mask}",
                              np.asarray(labels).astype(np.uint8, copy=False), geometry, attrs,
                              array_layout, None)


def _write_image_group(loc: StoreLocation, group_path: str, name: str, volume: np.ndarray,
                       geometry: Geometry, attrs: dict, array_layout: ArrayLayout,
                       on_shard: Callable[[int], None] | None) -> WrittenSeries:
    if volume.ndim != 3:
        raise ValueError(f"{name}: expected a (Z, Y, X) volume, got shape {volume.shape}")
    if not (np.issubdtype(volume.dtype, np.integer) or volume.dtype == np.bool_):
        raise ValueError(f"{name}: expected an integer dtype, got {volume.dtype}")
    z, y, x = (int(n) for n in volume.shape)
    step = array_layout.shard_slices
    content_hash = volume_hash((volume[i:i + step] for i in range(0, z, step)), volume.shape, volume.dtype)
    meta = dict(attrs)
    meta.update({"content_hash": content_hash, "shape": [z, y, x], "dtype": volume.dtype.name,
                 "spacing_mm": [float(v) for v in geometry.spacing_mm],
                 "origin_mm": [float(v) for v in geometry.origin_mm],
                 "direction": [float(v) for v in geometry.direction]})
    group = _image_group(open_root(loc), group_path, {"ome": ngff_multiscales(name, geometry), "breastflow": meta})
    array = group.create_array(
        layout.FULL_RESOLUTION,
        shape=(z, y, x),
        dtype=volume.dtype,
        chunks=(array_layout.chunk_slices, y, x),
        shards=(step, y, x),
        compressors=array_layout.compression.codecs(array_layout.level),
        dimension_names=("z", "y", "x"),
        fill_value=0,
        overwrite=True,
        # every chunk is written: skipping all-zero chunks costs a full compare per
        # chunk (measured: ~1.8x slower writes) and saves nothing on scanner data
        config={"write_empty_chunks": True},
    )
    # breastflow's own layout is encoded and written shard by shard directly (byte for
    # byte what zarr-python writes, without its ~0.4 ms per inner chunk); others via zarr
    plain = plain_layout(array)
    fs = loc.filesystem() if plain is not None else None
    shard_bytes = 0
    for index, start in enumerate(range(0, z, step), start=1):
        if plain is None:
            array[start:start + step] = volume[start:start + step]
        else:
            key = array.metadata.encode_chunk_key((start // step, 0, 0))
            shard = encode_shard(volume[start:start + step], plain)
            write_object(fs, loc.fs_path(group_path, layout.FULL_RESOLUTION, key), shard, not loc.remote)
            shard_bytes += len(shard)
        if on_shard is not None:
            on_shard(index)
        _maybe_inject_fault(index)
    if plain is None:
        stored = int(array.nbytes_stored())
    else:  # what nbytes_stored() lists: the shards written above plus the array's zarr.json
        stored = shard_bytes + int(fs.size(loc.fs_path(group_path, layout.FULL_RESOLUTION, ZARR_JSON)))
    return WrittenSeries(path=group_path, shape=(z, y, x), dtype=volume.dtype.name,
                         content_hash=content_hash, nbytes=int(volume.nbytes), stored_bytes=stored)


def _image_group(root: zarr.Group, group_path: str, attributes: dict) -> zarr.Group:
    """The image group at ``group_path``, with ``attributes`` set at its top level.

    A new group is created with its attributes in one metadata write; an
    existing one (a re-ingest) is opened and its attributes updated, as before.
    """
    try:
        return root.create_group(group_path, attributes=attributes)
    except (zarr.errors.ContainsGroupError, zarr.errors.ContainsArrayError):
        group = root.require_group(group_path)  # raises TypeError on an array, as before
        group.attrs.update(attributes)
        return group


def open_series_array(loc: StoreLocation, study: str, series: str) -> zarr.Array:
    """Open a series' full-resolution ``(Z, Y, X)`` array read-only.

    Raises:
        FileNotFoundError: no such series in the store.
    """
    try:
        return zarr.open_array(loc.join(layout.series_array(study, series)), mode="r",
                               storage_options=loc.storage_options or None, zarr_format=3)
    except (FileNotFoundError, zarr.errors.ArrayNotFoundError, zarr.errors.NodeNotFoundError) as err:
        raise FileNotFoundError(f"no series {study}/{series} in store {loc.url}") from err


def series_attrs(loc: StoreLocation, study: str, series: str) -> dict:
    """The group attributes (``ome`` and ``breastflow``) of a series."""
    group = zarr.open_group(loc.join(layout.series_group(study, series)), mode="r",
                            storage_options=loc.storage_options or None, zarr_format=3)
    return dict(group.attrs)


def stored_hash(loc: StoreLocation, study: str, series: str) -> str:
    """Recompute the content hash from what is stored, one shard at a time."""
    array = open_series_array(loc, study, series)
    step = int(array.shards[0]) if array.shards else int(array.chunks[0])
    z = int(array.shape[0])
    return volume_hash((array[i:i + step] for i in range(0, z, step)), array.shape, array.dtype)


def stored_mismatch(loc: StoreLocation, study: str, series: str, volume: np.ndarray) -> str | None:
    """Read a written series back shard by shard and compare it voxel for voxel with ``volume``.

    This is the verification before commit: stronger than comparing content
    hashes (the hash of ``volume`` is already known) and a SHA-256 pass cheaper.
    Only one shard of the stored array is in memory at a time.

    Args:
        loc: the store; study, series: which series.
        volume: ``(Z, Y, X)`` array that was written.

    Returns:
        ``None`` when identical, else a description of the first difference.
    """
    array = open_series_array(loc, study, series)
    if tuple(array.shape) != tuple(volume.shape) or array.dtype != volume.dtype:
        return f"stored {tuple(array.shape)} {array.dtype} vs written {tuple(volume.shape)} {volume.dtype}"
    step = int(array.shards[0]) if array.shards else int(array.chunks[0])
    plain = plain_layout(array)
    if plain is not None:  # read each shard object back and decode it directly (see shard_io)
        fs, scratch = loc.filesystem(), np.empty((plain.chunk_slices,) + volume.shape[1:], dtype=plain.dtype)
        group_path = layout.series_group(study, series)
        for start in range(0, int(array.shape[0]), step):
            key = array.metadata.encode_chunk_key((start // step, 0, 0))
            try:
                data = read_object(fs, loc.fs_path(group_path, layout.FULL_RESOLUTION, key), not loc.remote)
            except FileNotFoundError:
                return f"shard {key} is missing"
            problem = shard_mismatch(data, volume[start:start + step], plain, scratch)
            if problem is not None:
                return f"slices {start}..{min(start + step, volume.shape[0]) - 1}: {problem}"
        return None
    for start in range(0, int(array.shape[0]), step):
        if not np.array_equal(array[start:start + step], volume[start:start + step]):
            return f"slices {start}..{min(start + step, volume.shape[0]) - 1} differ"
    return None


def shard_aligned(array, shard_slices: int):
    """Rechunk a Dask ``(Z, Y, X)`` array so every block is exactly one shard.

    Use before ``dask.array.store`` into a sharded Zarr array: blocks smaller
    than a shard make several tasks rewrite the same shard object concurrently,
    which silently drops data.

    Args:
        array: ``dask.array.Array`` of shape ``(Z, Y, X)``.
        shard_slices: slices per shard of the target array.
    """
    return array.rechunk({0: shard_slices, 1: -1, 2: -1})
