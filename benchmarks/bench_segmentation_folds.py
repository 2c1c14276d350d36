"""Segmentation folds: Ray-parallel vs sequential wall time, patch loader vs network, the reduced scenario-2 row,
and one fold on a GPU vs the CPU.

Usage::

    python benchmarks/bench_segmentation_folds.py [--out DIR] [--studies 24] [--folds 3] [--cpus 2]
        [--parts loader,folds,scenario2] [--device cpu|cuda] [--store URL] [--volumes NPZ] [--json PATH]
        [--prefetch 0,2] [--loader-rounds 3] [--scale-fold-iterations N] [--amp 0,1] [--amp-rounds 1]

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
   The sampler twice, alternating for ``--loader-rounds`` (medians): ``rescan`` (each call
   pads the volume and scans its label for fg/bg indices, the loader before ``patch_inputs``)
   and ``cached`` (``patch_inputs`` once, its seconds reported).
3. ``scenario2``: ``run_scenario2_row`` (real pre vs real pre + syn post -> real post,
   quick, 3 folds) on the already running Ray; and its time again with every fold reused.
4. ``fold_device``: fold 0 of ``real_post`` trained by ``train_fold`` (what ``run_fold`` runs
   after reading its volumes; no checkpoint writes) on ``--device`` and on the CPU at each
   ``--cpu-threads`` (none: ``--cpu-threads ''``), for the quick plan (``FoldTrainConfig.quick``) and the
   full plan (nnU-Net's SGD, batch 2, ``--full-epochs`` x ``--full-iterations``); per-epoch wall times;
   each run at every ``--prefetch`` (0: serial sampling; ratios serial / prefetched) and, on ``--device``,
   at every ``--amp`` (``FoldTrainConfig.amp``: bf16 autocast on CUDA, ignored on the CPU), off and on
   alternating for ``--amp-rounds`` (ratios fp32 / bf16 of the median epoch; CPU comparison runs: fp32).
   On CUDA each trained fold is validated at the other precision too (``val_dice_amp_flipped``), and
   ``amp_loss_check``: one fixed batch's loss in fp32 vs bf16 (same weights) per plan.
5. ``scale``: no store: the full plan of a cohort of ``--scale-shape`` volumes at
   ``--scale-spacing`` (paper-sized breast MRI after the single-breast crop), the patch
   sampler on one such volume (patches/s, rescan vs cached as in ``loader``) vs network steps
   (batch 2, SGD) on ``--device`` (on CUDA at every ``--amp``, alternating, ``--amp-rounds``) and on the CPU
   at the largest ``--cpu-threads`` (``--scale-cpu-steps 0``: not; ``--scale-steps 0``: no network steps); with
   ``--scale-fold-iterations N``, ``train_fold`` on that volume (2 epochs x N steps, no validation) at every
   ``--prefetch`` and ``--amp``; on CUDA the fixed-batch fp32 vs bf16 loss check of the paper-sized plan.

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
from seg_bench_timing import (
    _sync,
    amp_loss_check,
    amp_ratios,
    network_steps,
    prefetch_ratios,
    sampler_rates,
    scale_volume,
    time_fold,
)

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


def bench_loader(volumes, plan, config, n_batches: int = 30, warmup: int = 0, rounds: int = 3) -> dict:
    """Patches/s of the sampler (rescan and cached, :func:`sampler_rates`) vs of the network's training steps."""
    from monai.losses import DiceCELoss

    from breastflow.segmentation.train import (
        _batch,
        build_network,
        deep_supervision_loss,
        patch_inputs,
        patch_sampler,
    )

    rates = sampler_rates(volumes, plan, config, n_batches, rounds)
    sampler, rng, inputs = patch_sampler(plan, config), np.random.default_rng(0), patch_inputs(volumes, plan)
    batches = [_batch(inputs, sampler, config, rng) for _ in range(n_batches)]
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
    net = n_batches * config.batch_size / (time.perf_counter() - start)
    return rates | {"patches": n_batches * config.batch_size, "network_patches_per_s": round(net, 1),
                    "rescan_over_network": round(rates["rescan_patches_per_s"] / net, 2),
                    "cached_over_network": round(rates["cached_patches_per_s"] / net, 2),
                    "patch_size": list(plan.patch_size), "n_volumes": len(volumes), "device": config.device}


def bench_fold_device(train, val, plans: dict, args: argparse.Namespace) -> dict:
    """Part ``fold_device``: each plan on ``--device`` (if not cpu; its CPU side at the most threads) and on the
    CPU at each thread count, each at every ``--prefetch``; ratios CPU / device of the steady epoch and of the
    whole training (first prefetch and amp), serial / prefetched and fp32 / bf16 per run."""
    from breastflow.segmentation.train import FoldTrainConfig

    out: dict = {}
    for name in args.plans:
        cpu = args.full_cpu_threads if name == "full" and args.full_cpu_threads else args.cpu_threads
        runs = ([(args.device, max(args.cpu_threads, default=None))] if args.device != "cpu" else [])
        runs += [("cpu", t) for t in cpu]
        plan, figures = plans[name], []
        for device, threads in runs:
            amps = args.amp * args.amp_rounds if device == args.device else [0]  # CPU comparison: fp32
            for prefetch in args.prefetch:
                for amp in amps:  # off, on, off, on ...: alternating
                    common = {"device": device, "torch_threads": threads, "prefetch": prefetch, "amp": bool(amp)}
                    if name == "quick":
                        config = FoldTrainConfig.quick(**common, **({"epochs": args.quick_epochs}
                                                                    if args.quick_epochs else {}))
                    else:
                        config = FoldTrainConfig(epochs=args.full_epochs, iterations=args.full_iterations, **common)
                    figures.append(time_fold(train, val, plan, config))
                    print(json.dumps({name: figures[-1]}), flush=True)
        out[name] = {"patch_size": list(plan.patch_size), "filters": list(plan.filters), "runs": figures,
                     "serial_over_prefetch": prefetch_ratios(figures), "fp32_over_bf16": amp_ratios(figures)}
        if args.device != "cpu":
            out[name]["amp_loss_check"] = amp_loss_check(plan, args.device)
            print(json.dumps({f"{name}_amp_loss_check": out[name]["amp_loss_check"]}), flush=True)
        first = [f for f in figures if f["prefetch"] == args.prefetch[0] and f["amp"] == bool(args.amp[0])]
        gpu, cpus = first[:1], [f for f in first if f["device"] == "cpu"]
        if args.device != "cpu" and gpu and cpus:
            for key in ("median_epoch_s", "train_s"):
                out[name][f"cpu_over_gpu_{key}"] = {f"cpu{f['torch_threads']}": round(f[key] / gpu[0][key], 1)
                                                    for f in cpus}
    return out


def bench_scale(args: argparse.Namespace) -> dict:
    """Part ``scale``: the paper-sized full plan's sampler vs network steps on the device and the CPU, and
    (``--scale-fold-iterations``) ``train_fold`` on that volume serial vs prefetched."""
    from breastflow.segmentation.plan import plan_from_shapes
    from breastflow.segmentation.train import FoldTrainConfig

    shape, spacing = tuple(args.scale_shape), tuple(args.scale_spacing)
    plan = plan_from_shapes([spacing] * 4, [shape] * 4, quick=False)
    volume = scale_volume(shape)
    rates = sampler_rates([volume], plan, FoldTrainConfig(), args.scale_loader_batches, args.loader_rounds)
    loader = rates["cached_patches_per_s"]
    out: dict = {"shape": list(shape), "spacing": list(spacing), "patch_size": list(plan.patch_size),
                 "filters": list(plan.filters), "strides": [list(s) for s in plan.strides],
                 "loader_1thread": rates, "network": []}
    print(json.dumps({"scale_loader": rates}), flush=True)
    cuda = args.device != "cpu"
    runs = [(args.device, bool(a), None) for a in args.amp * args.amp_rounds] if cuda else [(args.device, False, None)]
    runs = runs if args.scale_steps else []  # --scale-steps 0: the sampler (and the fold) alone
    cpu = args.device != "cpu" and args.scale_cpu_steps and args.cpu_threads
    runs += [("cpu", False, max(args.cpu_threads))] if cpu else []
    for device, bf16, threads in runs:
        steps = args.scale_steps if device != "cpu" or args.device == "cpu" else args.scale_cpu_steps
        out["network"].append(network_steps(plan, device, steps, bf16, threads, warmup=1 if device == "cpu" else 2))
        figures = out["network"][-1]
        figures["rescan_over_network"] = round(rates["rescan_patches_per_s"] / figures["patches_per_s"], 2)
        figures["cached_over_network"] = round(loader / figures["patches_per_s"], 2)
        print(json.dumps({"scale": figures}), flush=True)
    steps = {bf16: statistics.median(f["s_per_step"] for f in out["network"] if f["device"] == args.device
                                     and f["bf16"] == bf16) for bf16 in (False, True)
             if any(f["device"] == args.device and f["bf16"] == bf16 for f in out["network"])}
    if len(steps) == 2:
        out["network_fp32_over_bf16"] = round(steps[False] / steps[True], 2)
    if cuda:
        out["amp_loss_check"] = amp_loss_check(plan, args.device)
        print(json.dumps({"scale_amp_loss_check": out["amp_loss_check"]}), flush=True)
    if args.scale_fold_iterations:
        folds = []
        for prefetch in args.prefetch:
            for amp in args.amp * args.amp_rounds if cuda else [0]:
                config = FoldTrainConfig(epochs=2, iterations=args.scale_fold_iterations, device=args.device,
                                         prefetch=prefetch, torch_threads=max(args.cpu_threads, default=None),
                                         amp=bool(amp))
                folds.append(time_fold([volume], [], plan, config))
                print(json.dumps({"scale_fold": folds[-1]}), flush=True)
        out["fold"] = {"runs": folds, "serial_over_prefetch": prefetch_ratios(folds),
                       "fp32_over_bf16": amp_ratios(folds)}
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
    parser.add_argument("--loader-rounds", type=int, default=3, help="alternating rescan/cached sampler rounds")
    parser.add_argument("--prefetch", type=_ints, default=[2], help="FoldTrainConfig.prefetch values to time")
    parser.add_argument("--amp", type=_ints, default=[1], help="FoldTrainConfig.amp values (0,1) on --device")
    parser.add_argument("--amp-rounds", type=int, default=1, help="alternating rounds of the --amp values")
    parser.add_argument("--scale-fold-iterations", type=int, default=0, help="scale: train_fold steps per epoch")
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
                                            args.loader_batches, 3 if cuda else 0, args.loader_rounds)
            if cuda:
                report["loader_full"] = bench_loader(train, plans["full"], FoldTrainConfig(device=args.device),
                                                     args.loader_batches, 3, args.loader_rounds)
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
