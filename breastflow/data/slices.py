"""Batched random axial-slice reads from the store (the first piece of the training data layer).

A 2D training loader samples random ``(series, z)`` picks. Going through
zarr-python for each pick costs ~2 ms of call overhead, about what decoding
an 8-bit PNG costs, so :class:`SliceReader` reads the store's own layout
directly and falls back to zarr for anything else:

* the store writes each series as chunks ``(k, Y, X)`` (``k`` axial slices,
  default 1) packed into shards ``(m, Y, X)``; every shard object ends with
  its index (``m / k`` pairs of uint64 offset/length, then a CRC32C), inner
  chunks are little-endian bytes compressed with Blosc (or not compressed);
* a shard's index is fetched once (a suffix read, CRC-checked) and cached;
* a batch fetches only the byte ranges of the chunks it needs: ``os.pread``
  locally, one ``fsspec`` ``cat_ranges`` call per batch on object storage (all
  ranges requested concurrently);
* Blosc decompresses each chunk straight into the output array.

Values are the stored raw values in the series' native integer dtype (no
normalisation; see ``attrs.breastflow`` for the rescale still to apply).
Masks are read through the same reader: the series name ``masks/<name>``
(:func:`mask_series`) reads ``studies/<study>/masks/<name>`` (uint8 labels on
the pre-contrast grid).
Tested voxel-for-voxel against zarr-python's own reads (``tests/data/test_slices.py``).

Shapes: :meth:`SliceReader.read_slices` returns ``(B, Y, X)`` for ``B``
indices of one series; :meth:`SliceReader.read_picks` returns one ``(Y, X)``
array per pick across series of any in-plane size.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import google_crc32c
import numpy as np
import zarr
from numcodecs import blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation

from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import open_series_array

#: Index entry of a chunk that was never written (holds the fill value).
_EMPTY = np.uint64(2**64 - 1)
#: Prefix of a "series" name that reads a study's mask instead: ``"masks/lesions"``.
MASK_PREFIX = f"{layout.MASKS}/"


def mask_series(mask: str) -> str:
    """The reader's series name of a study's mask (``"lesions"`` -> ``"masks/lesions"``)."""
    return MASK_PREFIX + layout.check_name(mask, "mask name")


def _array_path(study: str, series: str) -> str:
    """Store path of the ``(Z, Y, X)`` array of a series or (``masks/<name>``) a mask."""
    if series.startswith(MASK_PREFIX):
        return f"{layout.mask_group(study, series[len(MASK_PREFIX):])}/{layout.FULL_RESOLUTION}"
    return layout.series_array(study, series)


def _open_array(loc: StoreLocation, study: str, series: str) -> zarr.Array:
    if not series.startswith(MASK_PREFIX):
        return open_series_array(loc, study, series)
    try:
        return zarr.open_array(loc.join(_array_path(study, series)), mode="r",
                               storage_options=loc.storage_options or None, zarr_format=3)
    except (FileNotFoundError, zarr.errors.ArrayNotFoundError, zarr.errors.NodeNotFoundError) as err:
        raise FileNotFoundError(f"no mask {study}/{series} in store {loc.url}") from err


class SlicePick(NamedTuple):
    """One axial slice of one series: ``study`` pseudonym, ``series`` role name, slice index ``z``."""

    study: str
    series: str
    z: int


@dataclass
class _Series:
    """What the reader knows about one opened series."""

    array: zarr.Array
    shape: tuple[int, int, int]
    dtype: np.dtype
    fill_value: int
    direct: bool
    chunk_slices: int = 1
    shard_slices: int = 1
    compressed: bool = False
    shard_path: list[str] = field(default_factory=list)
    index: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def chunks_per_shard(self) -> int:
        return self.shard_slices // self.chunk_slices


def _direct_layout(array: zarr.Array) -> tuple[int, int, bool] | None:
    """``(chunk_slices, shard_slices, compressed)`` if the reader can decode this array itself."""
    if sys.byteorder != "little":
        return None
    codecs = array.metadata.codecs if array.metadata.zarr_format == 3 else ()
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
        return None
    sharding = codecs[0]
    _, y, x = array.shape
    shard = array.metadata.chunk_grid.chunk_shape
    chunk = sharding.chunk_shape
    if tuple(chunk[1:]) != (y, x) or tuple(shard[1:]) != (y, x) or shard[0] % chunk[0]:
        return None
    if sharding.index_location != ShardingCodecIndexLocation.end:
        return None
    index_codecs = sharding.index_codecs
    if (len(index_codecs) != 2 or not isinstance(index_codecs[0], BytesCodec)
            or index_codecs[0].endian.value != "little" or not isinstance(index_codecs[1], Crc32cCodec)):
        return None
    inner = sharding.codecs
    if not inner or not isinstance(inner[0], BytesCodec):
        return None
    little = inner[0].endian is None or inner[0].endian.value == "little"
    if not little or len(inner) > 2 or (len(inner) == 2 and not isinstance(inner[1], BloscCodec)):
        return None
    return int(chunk[0]), int(shard[0]), len(inner) == 2


class SliceReader:
    """Random axial-slice reads from a breastflow store, batched, with opened series cached.

    Args:
        loc: the store (local path or ``s3://``).
        max_open: series kept open (metadata and shard indices) at a time.

    Picklable: a copy (e.g. in a DataLoader worker process) starts with empty caches.
    """

    def __init__(self, loc: StoreLocation, max_open: int = 256) -> None:
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, got {max_open}")
        self.loc = loc
        self.max_open = max_open
        self._series: OrderedDict[tuple[str, str], _Series] = OrderedDict()
        self._fs = loc.filesystem() if loc.remote else None

    def __getstate__(self) -> dict:
        return {"loc": self.loc, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["loc"], state["max_open"])  # type: ignore[misc]

    def shape(self, study: str, series: str) -> tuple[int, int, int]:
        """``(Z, Y, X)`` of a series.

        Raises:
            FileNotFoundError: no such series in the store.
        """
        return self._open(study, series).shape

    def read_slices(self, study: str, series: str, indices: Sequence[int]) -> np.ndarray:
        """Read axial slices of one series.

        Args:
            study: study pseudonym; series: role name (e.g. ``"pre"``) or ``"masks/<name>"``.
            indices: ``B`` slice indices in ``[0, Z)``, any order, repeats allowed.

        Returns:
            ``(B, Y, X)`` array in the series' native dtype, in the order of ``indices``.

        Raises:
            FileNotFoundError: no such series.
            IndexError: an index outside ``[0, Z)``.
            ValueError: a shard index fails its CRC32C check (corrupt object).
        """
        entry = self._open(study, series)
        z = self._checked(entry, study, series, indices)
        out = np.empty((len(z), *entry.shape[1:]), dtype=entry.dtype)
        if entry.direct:
            self._read_direct([(entry, int(v), out[b]) for b, v in enumerate(z)])
        else:
            for b, v in enumerate(z):
                out[b] = entry.array[int(v)]
        return out

    def read_picks(self, picks: Sequence[SlicePick | tuple[str, str, int]]) -> list[np.ndarray]:
        """Read slices from any series in one batch (one round of storage requests).

        Args:
            picks: ``(study, series, z)`` triples.

        Returns:
            One ``(Y, X)`` array per pick, in order (series may differ in size).

        Raises:
            FileNotFoundError, IndexError, ValueError: as :meth:`read_slices`.
        """
        jobs, out = [], []
        for study, series, z in picks:
            entry = self._open(study, series)
            (v,) = self._checked(entry, study, series, [z])
            target = np.empty(entry.shape[1:], dtype=entry.dtype)
            if entry.direct:
                jobs.append((entry, int(v), target))
            else:
                target[...] = entry.array[int(v)]
            out.append(target)
        self._read_direct(jobs)
        return out

    @staticmethod
    def _checked(entry: _Series, study: str, series: str, indices: Sequence[int]) -> np.ndarray:
        z = np.asarray(indices, dtype=np.int64).reshape(-1)
        if z.size and (z.min() < 0 or z.max() >= entry.shape[0]):
            bad = int(z[(z < 0) | (z >= entry.shape[0])][0])
            raise IndexError(f"slice {bad} is outside series {study}/{series} with {entry.shape[0]} slices")
        return z

    def _open(self, study: str, series: str) -> _Series:
        key = (study, series)
        entry = self._series.get(key)
        if entry is not None:
            self._series.move_to_end(key)
            return entry
        array = _open_array(self.loc, study, series)
        if array.ndim != 3:
            raise ValueError(f"series {study}/{series} is not a (Z, Y, X) array: shape {array.shape}")
        direct = _direct_layout(array)
        entry = _Series(array=array, shape=tuple(int(n) for n in array.shape), dtype=np.dtype(array.dtype),
                        fill_value=int(array.fill_value or 0), direct=direct is not None)
        if direct is not None:
            entry.chunk_slices, entry.shard_slices, entry.compressed = direct
            n_shards = -(-entry.shape[0] // entry.shard_slices)
            base = _array_path(study, series)
            entry.shard_path = [self._path(base, array.metadata.encode_chunk_key((s, 0, 0)))
                                for s in range(n_shards)]
        self._series[key] = entry
        while len(self._series) > self.max_open:
            self._series.popitem(last=False)
        return entry

    def _path(self, base: str, key: str) -> str:
        return self.loc.fs_path(base, key) if self.loc.remote else os.path.join(self.loc.url, base, key)

    def _fetch(self, paths: list[str], starts: list[int], ends: list[int | None]) -> list[bytes]:
        """Byte ranges (``end=None``: to the end; negative start: from the end)."""
        if self._fs is not None:
            return self._fs.cat_ranges(paths, starts, ends)
        found = []
        for path, start, end in zip(paths, starts, ends, strict=True):
            fd = os.open(path, os.O_RDONLY)
            try:
                if start < 0:
                    start = max(0, os.fstat(fd).st_size + start)
                size = (os.fstat(fd).st_size if end is None else end) - start
                found.append(os.pread(fd, size, start))
            finally:
                os.close(fd)
        return found

    def _load_indices(self, wanted: set[tuple[int, int]], entries: dict[int, _Series]) -> None:
        """Fetch and CRC-check the indices of shards not cached yet."""
        missing = sorted(w for w in wanted if w[1] not in entries[w[0]].index)
        if not missing:
            return
        sizes = [entries[e].chunks_per_shard * 16 + 4 for e, _ in missing]
        blobs = self._fetch([entries[e].shard_path[s] for e, s in missing], [-n for n in sizes],
                            [None] * len(missing))
        for (e, s), size, blob in zip(missing, sizes, blobs, strict=True):
            entry = entries[e]
            if len(blob) != size:
                raise ValueError(f"shard {entry.shard_path[s]} is shorter than its index ({len(blob)} bytes)")
            body, crc = blob[:-4], blob[-4:]
            if np.uint32(google_crc32c.value(body)).tobytes() != crc:
                raise ValueError(f"shard index of {entry.shard_path[s]} fails its CRC32C check (corrupt object)")
            entry.index[s] = np.frombuffer(body, dtype="<u8").reshape(entry.chunks_per_shard, 2)

    def _read_direct(self, jobs: list[tuple[_Series, int, np.ndarray]]) -> None:
        """Fill each ``(Y, X)`` target with slice ``z`` of its series, fetching each chunk once."""
        if not jobs:
            return
        entries = {id(e): e for e, _, _ in jobs}
        self._load_indices({(id(e), z // e.shard_slices) for e, z, _ in jobs}, entries)
        chunks: dict[tuple[int, int, int], list[tuple[int, np.ndarray]]] = {}
        for entry, z, target in jobs:
            shard, within = divmod(z, entry.shard_slices)
            chunk, row = divmod(within, entry.chunk_slices)
            chunks.setdefault((id(entry), shard, chunk), []).append((row, target))
        keys, paths, starts, ends = [], [], [], []
        for key, wanted in chunks.items():
            entry = entries[key[0]]
            offset, length = entry.index[key[1]][key[2]]
            if offset == _EMPTY:
                for _, target in wanted:
                    target.fill(entry.fill_value)
                continue
            keys.append(key)
            paths.append(entry.shard_path[key[1]])
            starts.append(int(offset))
            ends.append(int(offset + length))
        for key, blob in zip(keys, self._fetch(paths, starts, ends), strict=True):
            entry = entries[key[0]]
            _decode_chunk(blob, entry, chunks[key])


def _decode_chunk(blob: bytes, entry: _Series, targets: list[tuple[int, np.ndarray]]) -> None:
    """Decode one inner chunk ``(k, Y, X)`` and copy the wanted rows into their targets."""
    if entry.chunk_slices == 1 and len(targets) == 1:
        target = targets[0][1]
        if entry.compressed:
            blosc.decompress(blob, target)
        else:
            target[...] = np.frombuffer(blob, dtype=entry.dtype.newbyteorder("<")).reshape(target.shape)
        return
    rows = np.frombuffer(blosc.decompress(blob) if entry.compressed else blob,
                         dtype=entry.dtype.newbyteorder("<")).reshape(entry.chunk_slices, *entry.shape[1:])
    for row, target in targets:
        target[...] = rows[row]


@functools.lru_cache(maxsize=8)
def _reader(url: str, options: str) -> SliceReader:
    return SliceReader(StoreLocation(url=url, storage_options=json.loads(options)))


def read_slices(loc: StoreLocation, study: str, series: str, indices: Sequence[int]) -> np.ndarray:
    """Read axial slices of one series with a per-store cached :class:`SliceReader`.

    Args:
        loc: the store; study: study pseudonym; series: role name.
        indices: ``B`` slice indices in ``[0, Z)``.

    Returns:
        ``(B, Y, X)`` array in the series' native dtype.

    Raises:
        FileNotFoundError, IndexError, ValueError: see :meth:`SliceReader.read_slices`.
    """
    reader = _reader(loc.url, json.dumps(loc.storage_options, sort_keys=True, default=str))
    return reader.read_slices(study, series, indices)
