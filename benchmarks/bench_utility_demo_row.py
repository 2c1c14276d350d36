"""The reduced scenario-2 row at demo size: wall time and Dice per epoch budget (issue 10, measured, not wired).

Usage::

    python benchmarks/bench_utility_demo_row.py STORE SYNTHETIC [--epochs 40 60] [--folds 2] [--cpus 2]
                                                [--test-splits val,test] [--foreground 0.333]

``STORE`` is a demo store (e.g. a copy of the demo's store after ``breastflow demo``) and
``SYNTHETIC`` a synthetic set of every split (``breastflow generate CKPT STORE --split all
--out NAME``). For each ``--epochs`` value, runs ``run_scenario2_row`` (real pre vs real pre +
syn post -> real post, quick plan, ``FoldTrainConfig.quick(epochs=E, torch_threads=1)``,
``--folds`` folds, test cases of the ``--test-splits`` catalog splits as the demo's step 8,
``--foreground`` share of tumour-centred patches) on one local Ray of ``--cpus`` CPUs, a fresh
experiment name each time (no fold reused), and prints JSON: seconds, Dice mean and n_test per row, fold val Dice,
and whether the augmented row beats real pre.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid


def main() -> None:
    """Parse the arguments, run the rows, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("synthetic")
    parser.add_argument("--epochs", type=int, nargs="+", default=[40, 60])
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--test-splits", default="val,test")
    parser.add_argument("--foreground", type=float, default=1 / 3)
    args = parser.parse_args()
    test_splits = tuple(t for t in args.test_splits.split(",") if t)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    from breastflow.segmentation.cases import segmentation_cases, test_cases
    from breastflow.segmentation.train import FoldTrainConfig
    from breastflow.segmentation.utility import run_scenario2_row

    cases = segmentation_cases(args.store, test_splits=test_splits)
    tests = test_cases(cases)
    out: dict = {"store": args.store, "synthetic": args.synthetic, "annotated": len(cases),
                 "test_splits": list(test_splits), "test_cases": len(tests), "test_tumour_cases": sum(1 for c in tests if c.n_lesions > 0), "runs": []}
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False)
    try:
        for epochs in args.epochs:
            config = FoldTrainConfig.quick(epochs=epochs, torch_threads=1, foreground_ratio=args.foreground)
            start = time.perf_counter()
            result = run_scenario2_row(args.store, args.synthetic, quick=True, folds=args.folds, train_config=config,
                                       experiment=f"demo-row-e{epochs}-{uuid.uuid4().hex[:6]}", write_report=False,
                                       test_splits=test_splits)
            seconds = time.perf_counter() - start
            rows = {r.train: {"dice_mean": round(r.dice_mean, 3), "n_test": r.n_test,
                              "dice": {k[:12]: round(v, 3) for k, v in r.dice.items()}} for r in result.rows}
            pre, aug = rows["real_pre"]["dice_mean"], rows["real_pre+syn_post"]["dice_mean"]
            out["runs"].append({"epochs": epochs, "iterations": config.iterations, "folds": args.folds,
                                "seconds": round(seconds, 1), "rows": rows,
                                "val_dice": {k: [round(o.val_dice, 3) for o in v] for k, v in result.trainings.items()},
                                "augmented_beats_pre": aug > pre})
            print(json.dumps(out["runs"][-1]), flush=True)
    finally:
        ray.shutdown()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
