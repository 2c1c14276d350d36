"""Training-read throughput: random axial slices/s from the store vs one 8-bit PNG per slice.

Usage::

    python benchmarks/bench_ingest.py /tmp/bench_cohort/dicom      # writes /tmp/bench_ingest/store2
    python benchmarks/bench_read.py /tmp/bench_ingest/store2 [--n 400] [--no-s3] [--no-codecs]

The reference pipeline (paper 003, section 3.1) min-max normalises each volume
to [0, 255] and saves every axial slice as a PNG; a training loader then opens
one PNG per sample. Here the PNGs are written with Pillow (untimed), then the
same random (series, slice) picks are read (timed) as PNG files, from the local
Zarr store, and from the same store copied to a moto S3 endpoint on 127.0.0.1.
The codec section compares lossless compressors on one series (size, write and
read time) - the measurement behind the store's default. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr
from PIL import Image

from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import ArrayLayout, Compression, Geometry, open_series_array, write_series


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


def timed(picks: list[tuple[int, int]], read) -> float:  # noqa: ANN001
    started = time.perf_counter()
    total = 0
    for index, z in picks:
        total += int(read(index, z).shape[0])
    assert total > 0
    return len(picks) / (time.perf_counter() - started)


def codec_table(loc: StoreLocation, study: str, name: str) -> list[dict]:
    volume = open_series_array(loc, study, name)[:]
    geometry = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    rows = []
    for compression in Compression:
        for level in ((3, 5) if compression is not Compression.NONE else (0,)):
            with tempfile.TemporaryDirectory() as tmp:
                target = StoreLocation.from_url(tmp)
                started = time.perf_counter()
                written = write_series(target, "s", "v", volume, geometry, {},
                                       ArrayLayout(compression=compression, level=level))
                write_s = time.perf_counter() - started
                array = open_series_array(target, "s", "v")
                started = time.perf_counter()
                for z in range(0, volume.shape[0], 3):
                    array[z]
                read_s = (time.perf_counter() - started) / len(range(0, volume.shape[0], 3))
                rows.append({"codec": compression.value, "level": level,
                             "ratio": round(written.nbytes / written.stored_bytes, 2),
                             "write_mb_per_s": round(written.nbytes / 1e6 / write_s, 1),
                             "slice_read_ms": round(read_s * 1e3, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-s3", action="store_true")
    parser.add_argument("--no-codecs", action="store_true")
    args = parser.parse_args()
    loc = StoreLocation.from_url(args.store)
    catalog = read_catalog(loc)
    series = list(zip(catalog.study, catalog.series, strict=True))
    depth = [int(z) for z in catalog.z]
    rng = np.random.default_rng(args.seed)
    picks = [(int(i), int(rng.integers(depth[i]))) for i in rng.integers(len(series), size=args.n)]
    results: dict = {"series": len(series), "picks": args.n,
                     "slice_shape": [int(catalog.y.iloc[0]), int(catalog.x.iloc[0])]}
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_pngs(loc, series, Path(tmp))
        paths = [folders[key] for key in series]
        arrays = [open_series_array(loc, *key) for key in series]
        # alternate to even out cache effects
        results["png_slices_per_s"] = round(timed(picks, lambda i, z: np.asarray(
            Image.open(paths[i] / f"{z:04d}.png"))), 1)
        results["zarr_local_slices_per_s"] = round(timed(picks, lambda i, z: arrays[i][z]), 1)
    results["ratio_zarr_local_vs_png"] = round(results["zarr_local_slices_per_s"] / results["png_slices_per_s"], 2)
    if not args.no_s3:
        from breastflow.store.local_s3 import local_s3

        with local_s3() as s3:
            s3.make_bucket("bench-store")
            remote = StoreLocation.from_url("s3://bench-store/store")
            remote.filesystem().put(loc.url + "/", "bench-store/store/", recursive=True)
            remote_arrays = [open_series_array(remote, *key) for key in series]
            s3_picks = picks[: max(50, args.n // 4)]
            results["zarr_s3_moto_slices_per_s"] = round(timed(s3_picks, lambda i, z: remote_arrays[i][z]), 1)
        results["ratio_zarr_s3_vs_png"] = round(results["zarr_s3_moto_slices_per_s"]
                                                / results["png_slices_per_s"], 2)
    if not args.no_codecs:
        results["codecs"] = codec_table(loc, *series[0])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    zarr.config.set({"async.concurrency": 16})
    main()
