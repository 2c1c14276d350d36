"""Checkpoint selection: K checkpoints evaluated by Ray Tune fan-out vs one after another, in one run.

Usage::

    python benchmarks/bench_select.py STORE RUN [--model pix2pixhd] [--metrics fid_img,ssim,mse,mae]
                                      [--extra psnr] [--rounds 1] [--json PATH]

``STORE``/``RUN``: a trained run (e.g. the demo's ``breastflow-demo/store`` and its
``demo-<hash>`` run). The store is copied into a temporary folder first, so the
stored evaluations and synthetic sets of the benchmark never touch it. One local
Ray instance serves both arms (its start-up is timed apart). Timed, alternating
(order flipped every round), each with ``force=True`` (every checkpoint evaluated again):

* ``sequential``: :func:`breastflow.select.run.select_checkpoints` with ``max_concurrent=1``:
  the same Tune trials, one after another;
* ``fanout``: the same with ``max_concurrent`` = the cluster's CPUs (and GPUs when present).

The real-set features are extracted once before the first arm (the feature cache in the
copied store), as ``breastflow select`` does, and shared by both. Figures: wall seconds per
arm, speed-up (sequential / fan-out), parallel efficiency (speed-up / trials at once), and
what dominates a trial: its ``seconds`` breakdown (load, generate, load_sets, metrics, roi)
as recorded by each trial. The two arms must give the same table (checked, exact).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _arm(config, concurrent: int | None) -> tuple[float, Any]:
    from breastflow.select.run import select_checkpoints

    start = time.perf_counter()
    result = select_checkpoints(config.model_copy(update={"max_concurrent": concurrent, "force": True}))
    return time.perf_counter() - start, result


def _values(result, metrics: list[str]) -> dict[str, list[float]]:
    return {row["checkpoint"].rsplit("/", 1)[-1]: [row.get(m) for m in metrics] for row in result.table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("run")
    parser.add_argument("--model", default="pix2pixhd")
    parser.add_argument("--metrics", default="fid_img,ssim,mse,mae")
    parser.add_argument("--extra", default="psnr")
    parser.add_argument("--split", default="val")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from breastflow.train.ray_cluster import apply_ray_env

    apply_ray_env()
    import ray

    from breastflow.evaluate.config import EvaluationConfig
    from breastflow.select.run import SelectConfig
    from breastflow.train.ray_cluster import init_ray

    tmp = Path(tempfile.mkdtemp(prefix="bench-select-"))
    try:
        store = tmp / "store"
        shutil.copytree(args.store, store, ignore=shutil.ignore_patterns("synthetic", "eval", "selected.json",
                                                                          "report"))
        metrics = [m for m in args.metrics.split(",") if m]
        extra = tuple(m for m in args.extra.split(",") if m)
        config = SelectConfig(store=str(store), model=args.model, run=args.run, metrics=tuple(metrics),
                              extra_metrics=extra, split=args.split, evaluation=EvaluationConfig(allow_clipping=True))
        t0 = time.perf_counter()
        init_ray(include_dashboard=False)
        ray_start = time.perf_counter() - t0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        # the first call warms the real-feature cache and writes every checkpoint's synthetic set: not timed
        warm_s, first = _arm(config, None)
        walls: dict[str, list[float]] = {"sequential": [], "fanout": []}
        results: dict[str, Any] = {}
        for r in range(args.rounds):
            order = ["sequential", "fanout"] if r % 2 == 0 else ["fanout", "sequential"]
            for arm in order:
                wall, result = _arm(config, 1 if arm == "sequential" else None)
                walls[arm].append(wall)
                results[arm] = result
        same = _values(results["sequential"], metrics + list(extra)) == _values(results["fanout"], metrics + list(extra))
        k = len(results["fanout"].table)
        concurrent = min(k, cpus)
        seq, fan = statistics.median(walls["sequential"]), statistics.median(walls["fanout"])
        parts: dict[str, list[float]] = {}
        for row in results["sequential"].table:
            for part, value in (row.get("seconds") or {}).items():
                parts.setdefault(part, []).append(float(value))
        report = {
            "checkpoints": k, "cpus": cpus, "gpus": gpus, "trials_at_once": concurrent, "rounds": args.rounds,
            "metrics": metrics, "extra": list(extra), "ray_start_s": round(ray_start, 2),
            "first_call_s": round(warm_s, 2), "sequential_s": round(seq, 2), "fanout_s": round(fan, 2),
            "speedup": round(seq / fan, 3), "efficiency": round(seq / fan / concurrent, 3),
            "same_table": same,
            "trial_seconds_median": {p: round(statistics.median(v), 3) for p, v in parts.items()},
            "selected": first.selected.rsplit("/", 1)[-1], "device": "cuda" if gpus else "cpu",
            "load_average": os.getloadavg(),
        }
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
