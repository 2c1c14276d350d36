"""Ingest speed of breastflow vs dcm2niix on the same files: the commands a user types, and the internals.

Usage::

    breastflow phantom /tmp/c1 --studies 1 --seed 3 --profile realistic   # 5 series, 765 files
    breastflow phantom /tmp/c4 --studies 4 --seed 5 --profile realistic   # scaling: more series
    breastflow phantom /tmp/c40 --studies 40 --seed 5 --profile tiny      # many tiny series
    python benchmarks/bench_ingest.py /tmp/c1/dicom /tmp/c40/dicom --repeat 3            # commands
    python benchmarks/bench_ingest.py /tmp/c1/dicom --mode internals [--workers 1 2]      # internals

``--mode commands`` (default) times what a user types, each as a subprocess
with a fresh output folder per repetition, in one run on the same files:

* ``dcm2niix -z n -o OUT SOURCE`` (uncompressed NIfTI + JSON sidecars) and
  ``dcm2niix -z y -o OUT SOURCE`` (gzipped NIfTI);
* ``breastflow ingest SOURCE STORE --quiet --no-annotations`` (default
  executor: a small run stays in-process) and the same with ``--cluster``
  (forced Dask LocalCluster, start and stop included).

Wall seconds and CPU seconds (user + system of the child and every process it
waited for, from ``RUSAGE_CHILDREN``: dcm2niix, or breastflow with its Dask
worker processes) are the median of ``--repeat`` rounds; each round runs every
command once, in turn, so all see the same load. Ratios are breastflow /
dcm2niix (the issue's goal: <= 2 against ``-z n`` on the realistic study).
The 1-minute load average is printed per round: the machine is shared.

``--mode internals`` is the earlier breakdown, for each cohort, in one run on
the same files (page cache warmed by one untimed pass over every byte):

* dcm2niix converting every series folder to NIfTI (serially, and two
  folders at a time);
* breastflow in the benchmark process without Dask (plan, then every series
  one after the other): the work itself, without cluster overhead;
* ``breastflow.ingest.pipeline.run_ingest`` into a fresh store on a
  LocalCluster of 1 and of 2 single-threaded worker processes (cluster
  start-up excluded; planning, probing, writing, verification included).

Lesion annotations are not ingested (dcm2niix converts images only).
Reported: wall seconds, DICOM MB/s, slices/s, CPU seconds (user + system of
every process that worked: dcm2niix children, the client, the Dask workers),
ratios in the same run, store size; with ``--repeat N`` every figure is the
median of N rounds (each round runs every contender once, in turn, so all see
the same machine load). Prints JSON. Temporary outputs go to a
fresh folder (``--out`` or a unique ``mkdtemp``), removed unless ``--keep``.
No timed asserts: these are figures for docs/store.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def series_folders(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("*") if p.is_file()})


def dicom_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_dcm2niix(folders: list[Path], out: Path, parallel: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)

    def convert(index_folder: tuple[int, Path]) -> None:
        index, folder = index_folder
        target = out / str(index)
        target.mkdir(parents=True)
        subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-o", str(target), str(folder)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    cpu, started = children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(convert, enumerate(folders)))
    return time.perf_counter() - started, children_cpu() - cpu


COMMANDS = {
    "dcm2niix_zn": lambda src, out: ["dcm2niix", "-z", "n", "-o", str(out), str(src)],
    "dcm2niix_zy": lambda src, out: ["dcm2niix", "-z", "y", "-o", str(out), str(src)],
    "breastflow": lambda src, out: [_breastflow_cli(), "ingest", str(src), str(out), "--quiet", "--no-annotations",
                                    "--report", f"{out}.report.json"],
    "breastflow_cluster": lambda src, out: [_breastflow_cli(), "ingest", str(src), str(out), "--quiet",
                                            "--no-annotations", "--cluster", "--report", f"{out}.report.json"],
}
#: exit status per command that counts as success (breastflow: 0, everything landed).
_OK = {"dcm2niix_zn": (0,), "dcm2niix_zy": (0,), "breastflow": (0,), "breastflow_cluster": (0,)}


def _breastflow_cli() -> str:
    beside = Path(sys.executable).with_name("breastflow")
    return str(beside) if beside.exists() else (shutil.which("breastflow") or "breastflow")


def run_command(name: str, source: Path, out: Path) -> tuple[float, float, float | None, str | None]:
    """Run one command into a fresh ``out``.

    Returns:
        (wall s, CPU s of the child and its waited-for children, the run's own seconds from
        breastflow's report: planning to catalog, without interpreter start, imports and cluster stop;
        and its executor).
    """
    shutil.rmtree(out, ignore_errors=True)
    report = Path(f"{out}.report.json")
    report.unlink(missing_ok=True)
    if name.startswith("dcm2niix"):
        out.mkdir(parents=True)  # dcm2niix needs the folder; breastflow creates its store
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(COMMANDS[name](source, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode not in _OK[name]:
        raise RuntimeError(f"{name} exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}")
    if "Traceback" in done.stderr.decode(errors="replace"):
        raise RuntimeError(f"{name} printed a traceback: {done.stderr.decode(errors='replace')[-2000:]}")
    summary = json.loads(report.read_text()) if report.exists() else {}
    return seconds, cpu, summary.get("seconds"), summary.get("executor")


def bench_commands(source: Path, out: Path, repeat: int) -> dict:
    """Every command once per round, ``repeat`` rounds; medians and ratios vs dcm2niix."""
    nbytes, nfiles = dicom_bytes(source)
    for p in source.rglob("*"):  # warm the page cache for everyone alike
        if p.is_file():
            p.read_bytes()
    results: dict = {"cohort": str(source), "dicom_mb": round(nbytes / 1e6, 1), "dicom_files": nfiles,
                     "series": len(series_folders(source)), "repeat": repeat, "load_avg_1min": []}
    rounds = []
    for _ in range(repeat):
        rounds.append({name: run_command(name, source, out / name) for name in COMMANDS})
        results["load_avg_1min"].append(round(os.getloadavg()[0], 2))
    for name in COMMANDS:
        results[f"{name}_s"] = round(statistics.median(r[name][0] for r in rounds), 2)
        results[f"{name}_cpu_s"] = round(statistics.median(r[name][1] for r in rounds), 2)
    for name in ("breastflow", "breastflow_cluster"):
        results[f"{name}_run_s"] = round(statistics.median(r[name][2] for r in rounds), 2)
        results[f"{name}_executor"] = sorted({r[name][3] for r in rounds})
    for name in ("breastflow", "breastflow_cluster"):
        for peer in ("dcm2niix_zn", "dcm2niix_zy"):
            # per-round ratios (same load), then their median
            results[f"ratio_{name}_over_{peer}"] = round(statistics.median(r[name][0] / r[peer][0] for r in rounds), 2)
            results[f"ratio_cpu_{name}_over_{peer}"] = round(
                statistics.median(r[name][1] / r[peer][1] for r in rounds), 2)
    stored = sum(p.stat().st_size for p in (out / "breastflow").rglob("*") if p.is_file())
    results["store_mb"] = round(stored / 1e6, 1)
    for z in ("zn", "zy"):
        nifti = sum(p.stat().st_size for p in (out / f"dcm2niix_{z}").rglob("*") if p.is_file())
        results[f"nifti_mb_{z}"] = round(nifti / 1e6, 1)
    return results


def run_in_process(source: Path, store: Path) -> tuple[float, float, int]:
    """Plan and ingest every series here, one after the other (no Dask)."""
    from breastflow.ingest.plan import plan_ingest
    from breastflow.ingest.pseudonyms import Pseudonymiser
    from breastflow.ingest.report import Outcome
    from breastflow.ingest.series import ingest_series
    from breastflow.store.fs import StoreLocation

    shutil.rmtree(store, ignore_errors=True)
    loc = StoreLocation.from_url(str(store))
    cpu, started = own_cpu(), time.perf_counter()
    plan = plan_ingest(str(source), loc, Pseudonymiser.from_env())
    new = sum(ingest_series(job, loc).outcome is Outcome.NEW for job in plan.jobs)
    return time.perf_counter() - started, own_cpu() - cpu, new


def _worker_cpu() -> float:
    import psutil

    times = psutil.Process().cpu_times()
    return times.user + times.system


def run_breastflow(source: Path, store: Path, workers: int) -> tuple[float, float, dict]:
    from breastflow.ingest.annotations import AnnotationOptions
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import dask_client, run_ingest

    shutil.rmtree(store, ignore_errors=True)
    config = IngestConfig(cluster=ClusterConfig(workers=workers, processes=True))
    with dask_client(config.cluster) as client:  # cluster start-up is not ingest time
        client.wait_for_workers(workers)
        before = sum(client.run(_worker_cpu).values())
        cpu, started = own_cpu(), time.perf_counter()
        report = run_ingest(str(source), str(store), config, client=client,
                            annotations=AnnotationOptions(auto_detect=False))
        seconds = time.perf_counter() - started
        cpu = own_cpu() - cpu + sum(client.run(_worker_cpu).values()) - before
    return seconds, cpu, report.summary()


def _round(source: Path, out: Path, folders: list[Path], workers: tuple[int, ...]) -> dict:
    """One round: every contender once. Returns ``{name: (wall s, CPU s)}``."""
    times = {}
    for parallel in (1, 2):
        times[f"dcm2niix_x{parallel}"] = run_dcm2niix(folders, out / f"nifti{parallel}", parallel)
    seconds, cpu, new = run_in_process(source, out / "store0")
    assert new == len(folders), (new, len(folders))
    times["breastflow_nodask"] = (seconds, cpu)
    for n in workers:
        seconds, cpu, summary = run_breastflow(source, out / f"store{n}", n)
        assert summary["new"] == len(folders) and not summary["failed"] and not summary["quarantined"], summary
        times[f"breastflow_{n}w"] = (seconds, cpu)
    return times


def bench_cohort(source: Path, out: Path, repeat: int = 1, workers: tuple[int, ...] = (1, 2)) -> dict:
    folders = series_folders(source)
    nbytes, nfiles = dicom_bytes(source)
    for p in source.rglob("*"):  # warm the page cache for everyone alike
        if p.is_file():
            p.read_bytes()
    results: dict = {"cohort": str(source), "dicom_mb": round(nbytes / 1e6, 1), "dicom_files": nfiles,
                     "series": len(folders), "repeat": repeat}
    rounds = [_round(source, out, folders, workers) for _ in range(repeat)]
    names = list(rounds[0])
    for name in names:
        seconds = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds)
        results[f"{name}_s"], results[f"{name}_cpu_s"] = round(seconds, 2), round(cpu, 2)
        results[f"{name}_mb_per_s"] = round(nbytes / 1e6 / seconds, 1)
        results[f"{name}_slices_per_s"] = round(nfiles / seconds, 1)
    for name, peer in (("breastflow_nodask", "dcm2niix_x1"), ("breastflow_1w", "dcm2niix_x1"),
                       ("breastflow_2w", "dcm2niix_x2")):
        if name in names:
            results[f"ratio_{name}_vs_{peer}"] = round(results[f"{peer}_s"] / results[f"{name}_s"], 2)
            results[f"ratio_cpu_{name}_vs_{peer}"] = round(results[f"{peer}_cpu_s"] / results[f"{name}_cpu_s"], 2)
    if "breastflow_1w" in names and "breastflow_2w" in names:
        results["scaling_1_to_2_workers"] = round(results["breastflow_1w_s"] / results["breastflow_2w_s"], 2)
    stored = sum(p.stat().st_size for p in (out / "store0").rglob("*") if p.is_file())
    results["store_mb"] = round(stored / 1e6, 1)
    results["compression_ratio_vs_dicom"] = round(nbytes / stored, 2)
    return results


def _dcm2niix_version() -> str:
    done = subprocess.run(["dcm2niix", "-v"], capture_output=True, text=True, check=False)
    return next((line.strip() for line in done.stdout.splitlines() if "dcm2niiX version" in line), "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", type=Path, nargs="+", help="phantom dicom folders (one cohort each)")
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: a fresh mkdtemp)")
    parser.add_argument("--keep", action="store_true", help="keep the stores and NIfTI files")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per cohort; figures are medians")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="Dask worker counts to run (internals)")
    parser.add_argument("--mode", choices=("commands", "internals"), default="commands",
                        help="time the user's commands as subprocesses, or the in-process/Dask internals")
    args = parser.parse_args()
    os.environ.setdefault("BREASTFLOW_PSEUDONYM_KEY", secrets.token_hex(32))
    if shutil.which("dcm2niix") is None:
        raise SystemExit("dcm2niix not found: apt-get install -y dcm2niix")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    results = {"mode": args.mode, "cpu_count": os.cpu_count(), "dcm2niix": _dcm2niix_version(),
               "load_avg_1min_at_start": round(os.getloadavg()[0], 2), "cohorts": []}
    try:
        for index, source in enumerate(args.sources):
            if args.mode == "commands":
                results["cohorts"].append(bench_commands(source, out / f"cohort{index}", args.repeat))
            else:
                results["cohorts"].append(bench_cohort(source, out / f"cohort{index}", args.repeat,
                                                       tuple(args.workers)))
            print(json.dumps(results["cohorts"][-1], indent=1), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    results["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
