"""Training-read throughput: random axial slices/s from the store vs one 8-bit PNG per slice.

Usage::

    python benchmarks/bench_ingest.py /tmp/c1/dicom --out /tmp/bi --keep     # leaves /tmp/bi/cohort0/store2
    python benchmarks/bench_read.py /tmp/bi/cohort0/store2 [--n 800] [--batch 32] [--no-s3] [--no-layouts]

The reference pipeline (paper 003, section 3.1) min-max normalises each volume
to [0, 255] and saves every axial slice as a PNG; a training loader then opens
one PNG per sample. Here the PNGs are written with Pillow (untimed), then the
same random (series, slice) picks are read (timed, in one run, readers
interleaved round by round to share the machine's load evenly):

* ``png``: ``np.asarray(Image.open(path))`` per pick (8-bit, lossy in depth);
* ``zarr_per_slice``: zarr-python ``array[z]`` per pick (arrays opened once);
* ``reader_per_slice``: :class:`breastflow.data.slices.SliceReader` one pick per call;
* ``reader_batched``: ``SliceReader.read_picks`` with ``--batch`` picks per call;

locally and from the same store copied to a moto S3 endpoint on 127.0.0.1.
The layout section rewrites one series with other codecs and chunk depths
(size ratio, write MB/s, batched random-read slices/s): the measurement
behind the store's default layout. Prints JSON; scratch files go to a unique
temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from breastflow.data.slices import SliceReader
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import (
    ArrayLayout,
    Compression,
    Geometry,
    open_series_array,
    write_series,
)

Picks = list[tuple[str, str, int]]


def write_pngs(loc: StoreLocation, series: list[tuple[str, str]], out: Path) -> dict[tuple[str, str], Path]:
    folders = {}
    for study, name in series:
        volume = open_series_array(loc, study, name)[:].astype(np.float32)
        low, high = float(volume.min()), float(volume.max())
        scaled = ((volume - low) / max(high - low, 1e-6) * 255).round().astype(np.uint8)
        folder = out / study / name
        folder.mkdir(parents=True)
        for z, image in enumerate(scaled):
            Image.fromarray(image).save(folder / f"{z:04d}.png")
        folders[(study, name)] = folder
    return folders


def rates(readers: dict[str, Callable[[Picks], int]], picks: Picks, batch: int, rounds: int = 4) -> dict[str, float]:
    """Slices/s of each reader over the same picks, interleaved in ``rounds`` so load hits all alike."""
    seconds = dict.fromkeys(readers, 0.0)
    share = -(-len(picks) // rounds)
    for start in range(0, len(picks), share):
        part = picks[start:start + share]
        for name, read in readers.items():
            began = time.perf_counter()
            done = sum(read(part[i:i + batch]) for i in range(0, len(part), batch))
            seconds[name] += time.perf_counter() - began
            assert done == len(part), (name, done)
    return {name: round(len(picks) / s, 1) for name, s in seconds.items()}


def store_readers(loc: StoreLocation, series: list[tuple[str, str]]) -> dict[str, Callable[[Picks], int]]:
    arrays = {key: open_series_array(loc, *key) for key in series}
    reader = SliceReader(loc)
    for key in series:
        reader.read_slices(*key, [0])  # open and cache like a long-running loader would

    def zarr_per_slice(part: Picks) -> int:
        return sum(arrays[(st, se)][z].ndim == 2 for st, se, z in part)

    def reader_per_slice(part: Picks) -> int:
        return sum(reader.read_slices(st, se, [z]).shape[0] for st, se, z in part)

    def reader_batched(part: Picks) -> int:
        return len(reader.read_picks(part))

    return {"zarr_per_slice": zarr_per_slice, "reader_per_slice": reader_per_slice,
            "reader_batched": reader_batched}


def layout_table(loc: StoreLocation, study: str, name: str, n: int, batch: int, seed: int) -> list[dict]:
    volume = open_series_array(loc, study, name)[:]
    geometry = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    candidates = [ArrayLayout(compression=c, level=1) for c in Compression] + [
        ArrayLayout(compression=Compression.BLOSC_ZSTD_BITSHUFFLE, level=3),
        ArrayLayout(chunk_slices=2), ArrayLayout(chunk_slices=4), ArrayLayout(chunk_slices=16)]
    rng = np.random.default_rng(seed)
    picks = [("s", "v", int(z)) for z in rng.integers(volume.shape[0], size=n)]
    rows = []
    for candidate in candidates:
        with tempfile.TemporaryDirectory(prefix="bench_read_layout_") as tmp:
            target = StoreLocation.from_url(tmp)
            started = time.perf_counter()
            written = write_series(target, "s", "v", volume, geometry, {}, candidate)
            write_s = time.perf_counter() - started
            reader = SliceReader(target)
            reader.read_slices("s", "v", [0])
            got = rates({"r": lambda part, r=reader: len(r.read_picks(part))}, picks, batch)["r"]
            rows.append({"codec": candidate.compression.value, "level": candidate.level,
                         "chunk_slices": candidate.chunk_slices, "shard_slices": candidate.shard_slices,
                         "ratio": round(written.nbytes / written.stored_bytes, 2),
                         "write_mb_per_s": round(written.nbytes / 1e6 / write_s, 1),
                         "batched_read_slices_per_s": got})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store")
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-s3", action="store_true")
    parser.add_argument("--no-layouts", action="store_true")
    args = parser.parse_args()
    loc = StoreLocation.from_url(args.store)
    catalog = read_catalog(loc)
    series = list(zip(catalog.study, catalog.series, strict=True))
    depth = [int(z) for z in catalog.z]
    rng = np.random.default_rng(args.seed)
    picks = [(*series[i], int(rng.integers(depth[i]))) for i in rng.integers(len(series), size=args.n)]
    codec = open_series_array(loc, *series[0]).metadata.codecs[0].codecs[-1]
    results: dict = {"cpu_count": os.cpu_count(), "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
                     "series": len(series), "picks": args.n, "batch": args.batch, "store_codec": str(codec),
                     "slice_shapes": sorted({f"{y}x{x}" for y, x in zip(catalog.y, catalog.x, strict=True)})}
    with tempfile.TemporaryDirectory(prefix="bench_read_png_") as tmp:
        folders = write_pngs(loc, series, Path(tmp))

        def png(part: Picks) -> int:
            return sum(np.asarray(Image.open(folders[(st, se)] / f"{z:04d}.png")).ndim == 2 for st, se, z in part)

        local = rates({"png": png, **store_readers(loc, series)}, picks, args.batch)
    results["local_slices_per_s"] = local
    results["local_ratio_vs_png"] = {k: round(v / local["png"], 2) for k, v in local.items()}
    if not args.no_s3:
        from breastflow.store.local_s3 import local_s3

        with local_s3() as s3:
            s3.make_bucket("bench-store")
            remote = StoreLocation.from_url("s3://bench-store/store")
            remote.filesystem().put(loc.url + "/", "bench-store/store/", recursive=True)
            s3_picks = picks[: max(100, args.n // 4)]
            remote_rates = rates(store_readers(remote, series), s3_picks, args.batch)
        results["s3_moto_slices_per_s"] = remote_rates
        results["s3_moto_ratio_vs_local_png"] = {k: round(v / local["png"], 2) for k, v in remote_rates.items()}
    if not args.no_layouts:
        results["layouts"] = layout_table(loc, *series[0], args.n, args.batch, args.seed)
    results["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
