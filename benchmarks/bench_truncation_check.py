"""Cost of the encapsulated-pixel-data completeness check (issue 7, "never store wrong voxels").

Usage::

    breastflow phantom /tmp/cjls --studies 1 --seed 3 --profile realistic --transfer-syntax jpegls-lossless
    python benchmarks/bench_truncation_check.py /tmp/cjls/dicom --repeat 5

Times, in one run on the same files (page cache warmed by one untimed pass),
the two places the check runs, each with the check and with it replaced by a
no-op, alternating within every round so both see the same machine load:

* the planning probe (:func:`breastflow.dicom.discover.probe_headers`), which
  walks the items of local compressed files;
* decoding every series (:func:`breastflow.dicom.volume.read_volume`), which
  checks every compressed file before pydicom decodes it.

Reports CPU seconds of this process (``time.process_time``: the machine is
shared, wall time is noisy) and wall seconds, medians of ``--repeat`` rounds,
and the ratio with / without. Prints JSON. No timed asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import contextmanager
from unittest import mock

from breastflow.dicom import discover, volume
from breastflow.dicom.discover import discover as list_files
from breastflow.dicom.discover import probe_headers
from breastflow.dicom.series import group_series
from breastflow.dicom.volume import read_volume


@contextmanager
def check_disabled():
    """Replace both hooks by no-ops (the code as it was before the check)."""
    with mock.patch.object(discover, "_check_encapsulated_local", lambda *a, **k: None), \
            mock.patch.object(volume, "check_encapsulated", lambda *a, **k: None):
        yield


def timed(func) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    func()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="folder of compressed DICOM files (e.g. a JPEG-LS phantom study)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = list_files(args.source)
    for path in paths:  # warm the page cache
        with open(path, "rb") as handle:
            handle.read()
    headers, problems = probe_headers(paths)
    series = group_series(headers)
    stages = {
        "probe": lambda: probe_headers(paths),
        "decode": lambda: [read_volume(group) for group in series],
    }
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {s: {"with": [], "without": []} for s in stages}
    for _ in range(args.repeat):
        for stage, run in stages.items():
            samples[stage]["with"].append(timed(run))
            with check_disabled():
                samples[stage]["without"].append(timed(run))
    out: dict[str, object] = {"files": len(paths), "series": len(series), "problems": len(problems),
                              "repeat": args.repeat,
                              "transfer_syntaxes": sorted({h.transfer_syntax for h in headers})}
    for stage, runs in samples.items():
        cpu = {k: statistics.median(c for c, _ in v) for k, v in runs.items()}
        wall = {k: statistics.median(w for _, w in v) for k, v in runs.items()}
        out[stage] = {"cpu_s_with": round(cpu["with"], 3), "cpu_s_without": round(cpu["without"], 3),
                      "cpu_ratio": round(cpu["with"] / cpu["without"], 3),
                      "wall_s_with": round(wall["with"], 3), "wall_s_without": round(wall["without"], 3),
                      "wall_ratio": round(wall["with"] / wall["without"], 3)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
