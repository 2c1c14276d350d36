"""Segmentation folds: Ray-parallel vs sequential wall time, patch loader vs network, and the reduced scenario-2 row.

Usage::

    python benchmarks/bench_segmentation_folds.py [--out DIR] [--studies 24] [--folds 3] [--cpus 2]

Writes (or reuses) a demo-sized phantom store in ``DIR`` (``--studies`` tiny-profile
studies, ingested with masks) and a stand-in synthetic set ``bench`` (real
post_1 x 0.9: the segmentation sees a synthetic source of the right layout;
this benchmark times the machinery, not a generator). Then, in one run:

1. ``folds``: the quick configuration's ``--folds`` folds of ``real_post``, once
   sequentially in this process (``run_fold``, one torch thread each) and once as
   Ray tasks (``run_folds``, ``num_cpus=1`` each, a local Ray of ``--cpus`` CPUs
   started before timing); fresh checkpoint folders each time. Ratio sequential / parallel.
2. ``loader``: patches per second of the patch sampler (pad, foreground-oversampled
   crop, flips) vs patches per second the quick network consumes (forward + backward),
   one torch thread, on the same volumes.
3. ``scenario2``: ``run_scenario2_row`` (real pre vs real pre + syn post -> real post,
   quick, 3 folds) on the already running Ray; and its time again with every fold reused.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch


def build(out: Path, studies: int) -> str:
    """The demo's phantom store with masks, plus synthetic set ``bench`` (real post x 0.9)."""
    from breastflow.generate.compare import read_physical
    from breastflow.generate.synthetic import (
        list_synthetic_sets,
        write_synthetic_series,
    )
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig
    from breastflow.segmentation.cases import segmentation_cases
    from breastflow.store.commit import read_commit
    from breastflow.store.fs import StoreLocation
    from breastflow.store.zarr_io import series_attrs

    store = out / "store"
    if not (store / "catalog").exists():
        os.environ.setdefault("BREASTFLOW_PSEUDONYM_KEY", "bench-segmentation-" + "0" * 32)  # a throwaway store
        write_cohort(out / "phantom", PhantomConfig(studies=studies, seed=0))
        run_ingest(str(out / "phantom" / "dicom"), str(store), IngestConfig(cluster=ClusterConfig(workers=2)))
    loc = StoreLocation.from_url(str(store))
    if "bench" not in list_synthetic_sets(loc):
        for case in segmentation_cases(loc):
            real = read_commit(loc, case.study, "post_1")
            volume = np.round(read_physical(loc, case.study, "post_1") * 0.9).astype(real.dtype)
            write_synthetic_series(loc, "bench", real, series_attrs(loc, case.study, "post_1")["breastflow"],
                                   volume, {"generator": "gain 0.9"}, f"bench-{case.study}")
    return loc.url


def fold_jobs(url: str, k: int, tag: str):
    from breastflow.segmentation.cases import pool_cases, segmentation_cases
    from breastflow.segmentation.experiment import fold_items, train_items
    from breastflow.segmentation.folds import patient_folds
    from breastflow.segmentation.folds_ray import FoldJob
    from breastflow.segmentation.plan import plan_from_cases
    from breastflow.segmentation.preprocess import PreprocessConfig, SegmentationSource
    from breastflow.segmentation.scenarios import TrainSet
    from breastflow.segmentation.train import FoldTrainConfig
    from breastflow.store.layout import segmentation_fold_dir

    cases = segmentation_cases(url)
    pool = pool_cases(cases)
    plan = plan_from_cases(pool, quick=True)
    pre = PreprocessConfig(target_spacing=plan.target_spacing)
    items = train_items(cases, TrainSet((SegmentationSource.REAL_POST,)))
    jobs = []
    for fold in patient_folds([c.patient for c in pool], k):
        train, val = fold_items(items, fold)
        jobs.append(FoldJob(url, "real_post", fold.index, segmentation_fold_dir(tag, "real_post", fold.index),
                            tuple(train), tuple(val), plan, pre, FoldTrainConfig.quick(torch_threads=1)))
    return jobs


def bench_loader(job, n_batches: int = 30) -> dict:
    from monai.losses import DiceCELoss

    from breastflow.segmentation.folds_ray import load_volumes
    from breastflow.segmentation.train import (
        _batch,
        build_network,
        deep_supervision_loss,
        patch_sampler,
    )

    torch.set_num_threads(1)
    volumes = load_volumes(job.store, job.train, job.preprocess)
    sampler = patch_sampler(job.plan, job.config)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    batches = [_batch(volumes, sampler, job.config, rng) for _ in range(n_batches)]
    load_s = time.perf_counter() - start
    network, loss = build_network(job.plan), DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    network.train()
    start = time.perf_counter()
    for images, labels in batches:
        optimizer.zero_grad()
        deep_supervision_loss(network(images), labels, loss).backward()
        optimizer.step()
    net_s = time.perf_counter() - start
    patches = n_batches * job.config.batch_size
    return {"patches": patches, "loader_patches_per_s": round(patches / load_s, 1),
            "network_patches_per_s": round(patches / net_s, 1), "loader_over_network": round(net_s / load_s, 2),
            "patch_size": list(job.plan.patch_size), "n_volumes": len(volumes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--studies", type=int, default=24)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-seg-"))
    out.mkdir(parents=True, exist_ok=True)
    from breastflow.segmentation.folds_ray import run_fold, run_folds
    from breastflow.segmentation.utility import run_scenario2_row
    from breastflow.train.ray_cluster import init_ray

    url = build(out, args.studies)
    tag = uuid.uuid4().hex[:8]
    from breastflow.segmentation.cases import pool_cases, segmentation_cases, test_cases

    cases = segmentation_cases(url)
    report: dict = {"store": url, "studies": args.studies, "segmentation_cases": len(cases),
                    "pool": len(pool_cases(cases)), "test": len(test_cases(cases)), "folds": args.folds, "cpus": args.cpus,
                    "torch": torch.__version__, "gpu": torch.cuda.is_available()}
    report["loader"] = bench_loader(fold_jobs(url, args.folds, f"loader-{tag}")[0])
    start = time.perf_counter()
    sequential = [run_fold(job) for job in fold_jobs(url, args.folds, f"seq-{tag}")]
    seq_s = time.perf_counter() - start
    start = time.perf_counter()
    started = init_ray(include_dashboard=False, num_cpus=args.cpus)
    import ray

    report["ray_start_s"] = round(time.perf_counter() - start, 1)
    try:
        start = time.perf_counter()
        parallel = run_folds(fold_jobs(url, args.folds, f"par-{tag}"))
        par_s = time.perf_counter() - start
        report["folds"] = {"sequential_s": round(seq_s, 1), "parallel_s": round(par_s, 1),
                           "sequential_over_parallel": round(seq_s / par_s, 2),
                           "per_fold_train_s": [round(o.trained_to - o.trained_from, 1) for o in parallel],
                           "val_dice": [round(o.val_dice, 3) for o in sequential]}
        start = time.perf_counter()
        row = run_scenario2_row(url, "bench", experiment=f"s2-{tag}")
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        run_scenario2_row(url, "bench", experiment=f"s2-{tag}")
        report["scenario2"] = {"seconds": round(first_s, 1), "reused_seconds": round(time.perf_counter() - start, 1),
                               "rows": [{"train": r.train, "test": r.test, "dice_mean": round(r.dice_mean, 3),
                                         "n_test": r.n_test, "wilcoxon_p": r.wilcoxon_p} for r in row.rows],
                               "notes": list(row.notes)}
    finally:
        if started:
            ray.shutdown()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
