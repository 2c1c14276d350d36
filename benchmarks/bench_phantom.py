"""Phantom writing speed: 100 tiny studies and one realistic study, single process.

Run: ``.venv/bin/python benchmarks/bench_phantom.py [--tiny N] [--repeat R] [--skip-realistic]``.
Each workload runs ``R`` times (default 3); medians of wall and of this
process's CPU time are printed (CPU time is robust to other jobs on a shared
machine; worker processes' CPU is not counted, so that row reports wall only).
To compare with an older checkout, run this script with ``PYTHONPATH`` set to it.

Peer measured in the same run: the plain pydicom path (``dicom_io.save`` of a
full dataset per slice), to report the fast series encoder as a ratio, and
the cost of writing pixels alone (``numpy.tofile``) as a floor.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

from breastflow.phantom.cohort import write_cohort
from breastflow.phantom.config import PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.dicom_io import save
from breastflow.phantom.mr_headers import instance_dataset
from breastflow.phantom.mri import write_mri_study
from breastflow.phantom.series_writer import SeriesFileEncoder, set_pixel_module


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _timed_cpu(fn) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall, CPU of this process) seconds: CPU time is robust to other jobs on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def bench_encoder(tmp: Path, n: int = 200) -> None:
    write_mri_study(tmp / "src", 0, PhantomConfig(studies=1, seed=0), TransferSyntax.EXPLICIT_LE)
    src = pydicom.dcmread(next((tmp / "src").rglob("*.dcm")))
    template = pydicom.Dataset()
    for elem in src:
        if elem.tag not in (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010):
            template.add(elem)
    set_pixel_module(template, src.Rows, src.Columns, src.BitsStored)
    from breastflow.phantom.geometry import make_grid

    grid = make_grid(src.Rows, src.Columns, n, (300.0, 300.0), 1.0, 1.0)
    pixels = np.zeros((src.Rows, src.Columns), np.uint16)
    enc = SeriesFileEncoder(template, TransferSyntax.EXPLICIT_LE)
    fast = _timed(lambda: [enc.write(tmp / f"f{k}.dcm", f"1.2.3.{k}", k + 1, grid.position(k), pixels)
                           for k in range(n)])
    slow = _timed(lambda: [save(instance_dataset(template, grid, k, k + 1, f"1.2.3.{k}", pixels, 12),
                                tmp / f"s{k}.dcm", TransferSyntax.EXPLICIT_LE) for k in range(n)])
    raw = _timed(lambda: [pixels.tofile(tmp / f"r{k}.raw") for k in range(n)])
    print(f"per-slice write ({src.Rows}x{src.Columns}): series encoder {1e3 * fast / n:.2f} ms, "
          f"pydicom dcmwrite {1e3 * slow / n:.2f} ms (x{slow / fast:.1f}), raw tofile {1e3 * raw / n:.3f} ms")


def _median_of(repeat: int, fn, clear: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median (wall, CPU) seconds of ``repeat`` runs of ``fn``; ``clear`` is deleted (untimed) before each."""
    runs = []
    for _ in range(repeat):
        shutil.rmtree(clear, ignore_errors=True)
        runs.append(_timed_cpu(fn))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", type=int, default=100, help="tiny studies to write")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; medians are reported")
    parser.add_argument("--skip-realistic", action="store_true")
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--realistic-seeds", type=int, nargs="+", default=[0, 2],
                        help="seeds of the realistic studies (0: 448x448x149, 2: 512x512x170)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_phantom_"))
    try:
        if not args.skip_encoder:
            bench_encoder(tmp / "enc")
        cfg = PhantomConfig(studies=args.tiny, seed=0)
        t, cpu = _median_of(args.repeat, lambda: write_cohort(tmp / "tiny", cfg), tmp / "tiny")
        files = sum(1 for _ in (tmp / "tiny" / "dicom").rglob("*.dcm"))
        print(f"{args.tiny} tiny studies, explicit-le, 1 process: {t:.1f} s wall, {cpu:.1f} s CPU ({files} files, "
              f"{1e3 * t / files:.2f} ms/file; median of {args.repeat})", flush=True)
        try:
            from breastflow.phantom.cohort import default_workers

            workers = default_workers(cfg)
        except ImportError:  # an older checkout measured for the ratio
            workers = 2
        if workers > 1:
            t, _ = _median_of(args.repeat, lambda: write_cohort(tmp / "tiny_w", cfg, workers=workers),
                              tmp / "tiny_w")
            print(f"{args.tiny} tiny studies, explicit-le, {workers} worker processes: {t:.1f} s wall "
                  f"(median of {args.repeat})", flush=True)
        cfg = PhantomConfig(studies=min(args.tiny, 20), seed=0, transfer_syntaxes=(TransferSyntax.JPEG2000_LOSSLESS,))
        t, cpu = _median_of(args.repeat, lambda: write_cohort(tmp / "tiny_j2k", cfg), tmp / "tiny_j2k")
        print(f"{cfg.studies} tiny studies, jpeg2000-lossless, 1 process: {t:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        if not args.skip_realistic:
            for seed in args.realistic_seeds:
                cfg = PhantomConfig(studies=1, seed=seed, profile=Profile.REALISTIC, t2_fraction=0.0)
                rows: list[dict] = []

                def one(cfg: PhantomConfig = cfg, out: Path = tmp / f"real{seed}", rows: list[dict] = rows) -> None:
                    rows.append(write_mri_study(out, 0, cfg, TransferSyntax.EXPLICIT_LE).study)

                t, cpu = _median_of(args.repeat, one, tmp / f"real{seed}")
                row = rows[-1]
                print(f"realistic study seed {seed}: {row['matrix']}x{row['matrix']}x{row['n_slices']}, "
                      f"{row['n_post_phases'] + 1} phases, {row['n_files']} files: {t:.1f} s wall, {cpu:.1f} s CPU "
                      f"(median of {args.repeat})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
