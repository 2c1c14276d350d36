"""Ingest throughput of breastflow vs dcm2niix on the same series, and 1 -> 2 Dask worker scaling.

Usage::

    breastflow phantom /tmp/bench_cohort --studies 2 --seed 3 --profile realistic
    python benchmarks/bench_ingest.py /tmp/bench_cohort/dicom [--out /tmp/bench_ingest]

Measured in one run on the same files (page cache warmed by one untimed
header pass): dcm2niix converting every series folder to NIfTI (serially, and
two folders at a time), then ``breastflow.ingest.pipeline.run_ingest`` into a
fresh local store with a LocalCluster of 1 and of 2 single-threaded worker
processes. Throughput = DICOM bytes / wall seconds. Prints a JSON summary.
No timed asserts: these are figures for docs/store.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def series_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*") if p.is_file()})


def dicom_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def run_dcm2niix(folders: list[Path], out: Path, parallel: int) -> float:
    shutil.rmtree(out, ignore_errors=True)

    def convert(index_folder: tuple[int, Path]) -> None:
        index, folder = index_folder
        target = out / str(index)
        target.mkdir(parents=True)
        subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-o", str(target), str(folder)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(convert, enumerate(folders)))
    return time.perf_counter() - started


def run_breastflow(source: Path, store: Path, workers: int) -> tuple[float, dict]:
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import dask_client, run_ingest

    shutil.rmtree(store, ignore_errors=True)
    config = IngestConfig(cluster=ClusterConfig(workers=workers, processes=True))
    with dask_client(config.cluster) as client:  # cluster start-up is not ingest time
        client.wait_for_workers(workers)
        started = time.perf_counter()
        report = run_ingest(str(source), str(store), config, client=client)
        seconds = time.perf_counter() - started
    return seconds, report.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_ingest"))
    args = parser.parse_args()
    os.environ.setdefault("BREASTFLOW_PSEUDONYM_KEY", secrets.token_hex(32))
    if shutil.which("dcm2niix") is None:
        raise SystemExit("dcm2niix not found: apt-get install -y dcm2niix")
    folders = series_folders(args.source)
    nbytes, nfiles = dicom_bytes(args.source)
    for p in args.source.rglob("*"):  # warm the page cache for everyone alike
        if p.is_file():
            p.read_bytes()
    results: dict = {"dicom_mb": round(nbytes / 1e6, 1), "dicom_files": nfiles, "series": len(folders),
                     "cpu_count": os.cpu_count()}
    for parallel in (1, 2):
        seconds = run_dcm2niix(folders, args.out / f"nifti{parallel}", parallel)
        results[f"dcm2niix_x{parallel}_s"] = round(seconds, 2)
    for workers in (1, 2):
        seconds, summary = run_breastflow(args.source, args.out / f"store{workers}", workers)
        assert summary["new"] == len(folders), summary
        results[f"breastflow_{workers}w_s"] = round(seconds, 2)
    for name in ("dcm2niix_x1", "dcm2niix_x2", "breastflow_1w", "breastflow_2w"):
        seconds = results[f"{name}_s"]
        results[f"{name}_mb_per_s"] = round(nbytes / 1e6 / seconds, 1)
        results[f"{name}_slices_per_s"] = round(nfiles / seconds, 1)
    results["ratio_breastflow_1w_vs_dcm2niix_x1"] = round(results["dcm2niix_x1_s"] / results["breastflow_1w_s"], 2)
    results["ratio_breastflow_2w_vs_dcm2niix_x2"] = round(results["dcm2niix_x2_s"] / results["breastflow_2w_s"], 2)
    results["scaling_1_to_2_workers"] = round(results["breastflow_1w_s"] / results["breastflow_2w_s"], 2)
    stored = sum(p.stat().st_size for p in (args.out / "store2").rglob("*") if p.is_file())
    results["store_mb"] = round(stored / 1e6, 1)
    results["compression_ratio_vs_dicom"] = round(nbytes / stored, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
