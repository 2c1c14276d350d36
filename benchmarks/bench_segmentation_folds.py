"""Segmentation folds: Ray-parallel vs sequential wall time, patch loader vs network, the reduced scenario-2 row,
and one fold on a GPU vs the CPU.

Usage::

    python benchmarks/bench_segmentation_folds.py [--out DIR] [--studies 24] [--folds 3] [--cpus 2]
        [--parts loader,folds,scenario2] [--device cpu|cuda] [--store URL] [--volumes NPZ] [--json PATH]

Writes (or reuses) a demo-sized phantom store in ``DIR`` (``--studies`` tiny-profile
studies, ingested with masks) and a stand-in synthetic set ``bench`` (real
post_1 x 0.9: the segmentation sees a synthetic source of the right layout;
this benchmark times the machinery, not a generator), or uses ``--store``. Then the
``--parts`` (default ``loader,folds,scenario2``, the CPU benchmark):

1. ``folds``: the quick configuration's ``--folds`` folds of ``real_post``, once
   sequentially in this process (``run_fold``, one torch thread each) and once as
   Ray tasks (``run_folds``, ``num_cpus=1`` each, a local Ray of ``--cpus`` CPUs
   started before timing); fresh checkpoint folders each time. Ratio sequential / parallel.
2. ``loader``: patches per second of the patch sampler (pad, foreground-oversampled
   crop, flips) vs patches per second the quick network consumes (forward + backward),
   one torch thread, on the same volumes (fold 0's training volumes); with ``--device cuda``
   the network runs there (3 warm-up steps, synchronised) and the full plan is measured too.
3. ``scenario2``: ``run_scenario2_row`` (real pre vs real pre + syn post -> real post,
   quick, 3 folds) on the already running Ray; and its time again with every fold reused.
4. ``fold_device``: fold 0 of ``real_post`` trained by ``train_fold`` (what ``run_fold`` runs
   after reading its volumes; no checkpoint writes) on ``--device`` and on the CPU at each
   ``--cpu-threads``, for the quick plan (``FoldTrainConfig.quick``) and the full plan
   (nnU-Net's SGD, batch 2, ``--full-epochs`` x ``--full-iterations``); per-epoch wall times.
5. ``scale``: no store: the full plan of a cohort of ``--scale-shape`` volumes at
   ``--scale-spacing`` (paper-sized breast MRI after the single-breast crop), the patch
   sampler on one such volume (patches/s) vs network steps (batch 2, SGD) on ``--device``
   (fp32, and bf16 autocast on CUDA) and on the CPU at the largest ``--cpu-threads``.

``--volumes NPZ``: fold 0's preprocessed volumes and both plans; written from the store when
the file is missing, read instead of the store when present, so ``loader`` and
``fold_device`` run where the store's readers and SimpleITK (preprocessing) are not
installed. Prints JSON (and writes it with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch

PARTS = ("loader", "folds", "scenario2", "fold_device", "scale")


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


def fold_volumes(url: str | None, k: int, cache: Path | None) -> tuple[list, list, dict]:
    """Fold 0's preprocessed train and val volumes and the ``quick`` and ``full`` plans.

    Read from ``cache`` when it exists (no store, no SimpleITK needed); otherwise loaded from
    the store ``url`` (``load_volumes``, N4 and resampling included) and, with ``cache``, saved there.

    Raises:
        ValueError: no cache file and no store.
    """
    from breastflow.segmentation.plan import SegmentationPlan
    from breastflow.segmentation.train import Volume

    if cache is not None and cache.exists():
        with np.load(cache) as data:
            meta = json.loads(str(data["meta"]))
            sets = [[Volume(name, data[f"{part}_image_{i}"], data[f"{part}_mask_{i}"])
                     for i, name in enumerate(meta[part])] for part in ("train", "val")]
        return sets[0], sets[1], {k_: SegmentationPlan.model_validate(v) for k_, v in meta["plans"].items()}
    if url is None:
        raise ValueError(f"no volume cache at {cache} and no store to build it from")
    from breastflow.segmentation.cases import pool_cases, segmentation_cases
    from breastflow.segmentation.folds_ray import load_volumes
    from breastflow.segmentation.plan import plan_from_cases

    job = fold_jobs(url, k, "cache")[0]
    train, val = load_volumes(job.store, job.train, job.preprocess), load_volumes(job.store, job.val, job.preprocess)
    plans = {"quick": job.plan, "full": plan_from_cases(pool_cases(segmentation_cases(url)), quick=False)}
    if cache is not None:
        arrays = {f"{part}_{kind}_{i}": getattr(v, kind) for part, vols in (("train", train), ("val", val))
                  for i, v in enumerate(vols) for kind in ("image", "mask")}
        meta = {"train": [v.name for v in train], "val": [v.name for v in val], "store": url,
                "preprocess": job.preprocess.model_dump(mode="json"),
                "plans": {name: p.model_dump(mode="json") for name, p in plans.items()}}
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, meta=np.array(json.dumps(meta)), **arrays)
    return train, val, plans


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_loader(volumes, plan, config, n_batches: int = 30, warmup: int = 0) -> dict:
    """Patches/s of the sampler (``_batch``, to ``config.device``) vs of the network's training steps."""
    from monai.losses import DiceCELoss

    from breastflow.segmentation.train import (
        _batch,
        build_network,
        deep_supervision_loss,
        patch_sampler,
    )

    torch.set_num_threads(1)
    sampler = patch_sampler(plan, config)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    batches = [_batch(volumes, sampler, config, rng) for _ in range(n_batches)]
    _sync(config.device)
    load_s = time.perf_counter() - start
    network, loss = build_network(plan).to(config.device), DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    network.train()

    def steps(todo) -> None:
        for images, labels in todo:
            optimizer.zero_grad()
            deep_supervision_loss(network(images), labels, loss).backward()
            optimizer.step()

    steps(batches[:warmup])
    _sync(config.device)
    start = time.perf_counter()
    steps(batches)
    _sync(config.device)
    net_s = time.perf_counter() - start
    patches = n_batches * config.batch_size
    return {"patches": patches, "loader_patches_per_s": round(patches / load_s, 1),
            "network_patches_per_s": round(patches / net_s, 1), "loader_over_network": round(net_s / load_s, 2),
            "patch_size": list(plan.patch_size), "n_volumes": len(volumes), "device": config.device}


def time_fold(train, val, plan, config) -> dict:
    """One ``train_fold`` with per-epoch wall times (epoch ends seen by ``on_epoch``), then validation."""
    from breastflow.segmentation.train import train_fold

    marks: list[float] = []
    start = time.perf_counter()
    result = train_fold(train, val, plan, config, on_epoch=lambda state: marks.append(time.perf_counter()))
    end = time.perf_counter()
    epochs = np.diff([start, *marks])
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    return {"device": config.device, "torch_threads": config.torch_threads, "epochs": config.epochs,
            "iterations": config.iterations, "batch": config.batch_size, "optimizer": config.optimizer.value,
            "train_s": round(marks[-1] - start, 2), "first_epoch_s": round(float(epochs[0]), 3),
            "median_epoch_s": round(float(steady), 3), "steps_per_s": round(config.iterations / steady, 2),
            "validation_s": round(end - marks[-1], 2), "val_dice": round(result.val_dice, 3),
            "last_loss": round(result.losses[-1], 4)}


def bench_fold_device(train, val, plans: dict, args: argparse.Namespace) -> dict:
    """Part ``fold_device``: each plan on ``--device`` (if not cpu; its CPU side at the most threads) and on the
    CPU at each thread count; ratios CPU / device of the steady epoch and of the whole training."""
    from breastflow.segmentation.train import FoldTrainConfig

    out: dict = {}
    for name in args.plans:
        cpu = args.full_cpu_threads if name == "full" and args.full_cpu_threads else args.cpu_threads
        runs = ([(args.device, max(args.cpu_threads))] if args.device != "cpu" else []) + [("cpu", t) for t in cpu]
        plan, figures = plans[name], []
        for device, threads in runs:
            if name == "quick":
                config = FoldTrainConfig.quick(device=device, torch_threads=threads,
                                               **({"epochs": args.quick_epochs} if args.quick_epochs else {}))
            else:
                config = FoldTrainConfig(epochs=args.full_epochs, iterations=args.full_iterations, device=device,
                                         torch_threads=threads)
            figures.append(time_fold(train, val, plan, config))
            print(json.dumps({name: figures[-1]}), flush=True)
        out[name] = {"patch_size": list(plan.patch_size), "filters": list(plan.filters), "runs": figures}
        if args.device != "cpu":
            gpu = figures[0]
            for key in ("median_epoch_s", "train_s"):
                out[name][f"cpu_over_gpu_{key}"] = {f"cpu{f['torch_threads']}": round(f[key] / gpu[key], 1)
                                                    for f in figures[1:]}
    return out


def scale_volume(shape: tuple[int, int, int], seed: int = 0):
    """A random z-scored ``shape`` volume with three spherical lesions (radius 6-10 voxels)."""
    from breastflow.segmentation.train import Volume

    rng = np.random.default_rng(seed)
    image = rng.standard_normal(shape, dtype=np.float32)
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    mask = np.zeros(shape, np.uint8)
    for _ in range(3):
        centre, radius = [rng.integers(n // 4, 3 * n // 4) for n in shape], rng.integers(6, 11)
        mask[sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius ** 2] = 1
    return Volume("scale", image, mask)


def network_steps(plan, device: str, steps: int, bf16: bool = False, threads: int | None = None,
                  warmup: int = 2) -> dict:
    """Seconds per SGD training step (batch 2, random patches, deep supervision) after ``warmup`` steps."""
    from monai.losses import DiceCELoss

    from breastflow.segmentation.train import build_network, deep_supervision_loss

    if threads:
        torch.set_num_threads(threads)
    network, loss = build_network(plan).to(device), DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-2, momentum=0.99, nesterov=True)
    images = torch.randn((2, 1, *plan.patch_size), device=device)
    labels = (torch.rand((2, 1, *plan.patch_size), device=device) > 0.99).long()
    network.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            value = deep_supervision_loss(network(images), labels, loss)
        value.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    figures = {"device": device, "bf16": bf16, "threads": threads, "steps": steps, "s_per_step": round(seconds, 4),
               "patches_per_s": round(2 / seconds, 2)}
    if device.startswith("cuda"):
        figures["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    return figures


def bench_scale(args: argparse.Namespace) -> dict:
    """Part ``scale``: the paper-sized full plan's sampler vs network steps on the device and the CPU."""
    from breastflow.segmentation.plan import plan_from_shapes
    from breastflow.segmentation.train import FoldTrainConfig, _batch, patch_sampler

    shape, spacing = tuple(args.scale_shape), tuple(args.scale_spacing)
    plan = plan_from_shapes([spacing] * 4, [shape] * 4, quick=False)
    config = FoldTrainConfig()
    volume = scale_volume(shape)
    sampler, rng = patch_sampler(plan, config), np.random.default_rng(0)
    torch.set_num_threads(1)
    _batch([volume], sampler, config, rng)
    start = time.perf_counter()
    for _ in range(args.scale_loader_batches):
        _batch([volume], sampler, config, rng)
    loader = config.batch_size * args.scale_loader_batches / (time.perf_counter() - start)
    out: dict = {"shape": list(shape), "spacing": list(spacing), "patch_size": list(plan.patch_size),
                 "filters": list(plan.filters), "strides": [list(s) for s in plan.strides],
                 "loader_patches_per_s_1thread": round(loader, 2), "network": []}
    runs = [(args.device, False, None)] + ([(args.device, True, None)] if args.device != "cpu" else [])
    runs += [("cpu", False, max(args.cpu_threads))] if args.device != "cpu" else []
    for device, bf16, threads in runs:
        steps = args.scale_steps if device != "cpu" or args.device == "cpu" else args.scale_cpu_steps
        out["network"].append(network_steps(plan, device, steps, bf16, threads, warmup=1 if device == "cpu" else 2))
        out["network"][-1]["loader_over_network"] = round(loader / out["network"][-1]["patches_per_s"], 2)
        print(json.dumps({"scale": out["network"][-1]}), flush=True)
    return out


def run_ray_parts(url: str, args: argparse.Namespace, report: dict, tag: str) -> None:
    """Parts ``folds`` and ``scenario2`` (need the store, Ray and SimpleITK)."""
    from breastflow.segmentation.folds_ray import run_fold, run_folds
    from breastflow.segmentation.utility import run_scenario2_row
    from breastflow.train.ray_cluster import init_ray

    if "folds" in args.parts:
        start = time.perf_counter()
        sequential = [run_fold(job) for job in fold_jobs(url, args.folds, f"seq-{tag}")]
        seq_s = time.perf_counter() - start
    start = time.perf_counter()
    started = init_ray(include_dashboard=False, num_cpus=args.cpus)
    import ray

    report["ray_start_s"] = round(time.perf_counter() - start, 1)
    try:
        if "folds" in args.parts:
            start = time.perf_counter()
            parallel = run_folds(fold_jobs(url, args.folds, f"par-{tag}"))
            par_s = time.perf_counter() - start
            report["folds"] = {"sequential_s": round(seq_s, 1), "parallel_s": round(par_s, 1),
                               "sequential_over_parallel": round(seq_s / par_s, 2),
                               "per_fold_train_s": [round(o.trained_to - o.trained_from, 1) for o in parallel],
                               "val_dice": [round(o.val_dice, 3) for o in sequential]}
        if "scenario2" in args.parts:
            start = time.perf_counter()
            row = run_scenario2_row(url, "bench", experiment=f"s2-{tag}")
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            run_scenario2_row(url, "bench", experiment=f"s2-{tag}")
            report["scenario2"] = {"seconds": round(first_s, 1),
                                   "reused_seconds": round(time.perf_counter() - start, 1),
                                   "rows": [{"train": r.train, "test": r.test, "dice_mean": round(r.dice_mean, 3),
                                             "n_test": r.n_test, "wilcoxon_p": r.wilcoxon_p} for r in row.rows],
                                   "notes": list(row.notes)}
    finally:
        if started:
            ray.shutdown()


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--studies", type=int, default=24)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--parts", default="loader,folds,scenario2", help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--device", default="cpu", help="torch device of loader/fold_device/scale (cpu or cuda)")
    parser.add_argument("--store", default=None, help="an existing store (masks; synthetic set 'bench' for scenario2)")
    parser.add_argument("--volumes", type=Path, default=None, help="fold 0's volume cache (.npz), read or written")
    parser.add_argument("--cpu-threads", type=_ints, default=[16, 1], help="CPU torch threads to compare with")
    parser.add_argument("--full-cpu-threads", type=_ints, default=None, help="CPU threads of the full plan")
    parser.add_argument("--plans", default="quick,full", help="plans of fold_device: quick, full")
    parser.add_argument("--quick-epochs", type=int, default=None, help="fold_device quick epochs (default 12)")
    parser.add_argument("--full-epochs", type=int, default=3)
    parser.add_argument("--full-iterations", type=int, default=20)
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--scale-shape", type=_ints, default=[160, 512, 256], help="Z,Y,X voxels")
    parser.add_argument("--scale-spacing", type=lambda t: [float(v) for v in t.split(",")], default=[1.0, 0.7, 0.7])
    parser.add_argument("--scale-steps", type=int, default=10)
    parser.add_argument("--scale-cpu-steps", type=int, default=2)
    parser.add_argument("--scale-loader-batches", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.parts, args.plans = args.parts.split(","), args.plans.split(",")
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; known: {', '.join(PARTS)}")
    return args


def main() -> None:
    args = parse_args()
    tag = uuid.uuid4().hex[:8]
    report: dict = {"parts": args.parts, "device": args.device, "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "cpu_count": os.cpu_count()}
    url = args.store
    store_parts = {"folds", "scenario2"} & set(args.parts)
    cached = args.volumes is not None and args.volumes.exists()
    if url is None and (store_parts or ({"loader", "fold_device"} & set(args.parts) and not cached)):
        out = args.out or Path(tempfile.mkdtemp(prefix="bench-seg-"))
        out.mkdir(parents=True, exist_ok=True)
        url = build(out, args.studies)
        report["studies"] = args.studies
    if url is not None:
        from breastflow.segmentation.cases import (
            pool_cases,
            segmentation_cases,
            test_cases,
        )

        cases = segmentation_cases(url)
        report |= {"store": url, "segmentation_cases": len(cases), "pool": len(pool_cases(cases)),
                   "test": len(test_cases(cases)), "folds": args.folds, "cpus": args.cpus}
    if {"loader", "fold_device"} & set(args.parts):
        from breastflow.segmentation.train import FoldTrainConfig

        train, val, plans = fold_volumes(url, args.folds, args.volumes)
        report["fold0"] = {"train": len(train), "val": len(val), "shapes": sorted({v.image.shape for v in train}),
                           "volumes": str(args.volumes) if args.volumes else None}
        if "loader" in args.parts:
            cuda = args.device != "cpu"
            report["loader"] = bench_loader(train, plans["quick"], FoldTrainConfig.quick(device=args.device),
                                            args.loader_batches, 3 if cuda else 0)
            if cuda:
                report["loader_full"] = bench_loader(train, plans["full"], FoldTrainConfig(device=args.device),
                                                     args.loader_batches, 3)
            print(json.dumps({"loader": report["loader"]}), flush=True)
        if "fold_device" in args.parts:
            report["fold_device"] = bench_fold_device(train, val, plans, args)
    if "scale" in args.parts:
        report["scale"] = bench_scale(args)
    if store_parts:
        run_ray_parts(url, args, report, tag)
    text = json.dumps(report, indent=1, default=str)
    print(text)
    if args.json is not None:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
