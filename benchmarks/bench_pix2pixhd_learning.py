"""Does Pix2PixHD *learn* pre -> post-contrast enhancement? A short CPU run against the identity and linear baselines.

Steps (everything in-process, no Ray, so the figure is about the model, not the engine):

1. a deterministic phantom cohort (``--studies``, seed 0, fixed pseudonym key and a
   split seed that holds studies out) written and ingested into a fresh store;
2. Pix2PixHD (paper 003 eq. 3: LSGAN + discriminator feature matching; the VGG
   perceptual term OFF, no weights offline) trained on the ``train`` split with a plain
   loop over a DataLoader of ``paired_phases`` (``model.train_step`` then
   ``model.end_epoch()``), native slice sizes (batches grouped by size, so nothing is
   resampled), rot90 augmentation, slices inside a lesion box drawn ``--lesion-weight``
   times as often; saved with the engine's checkpoint layout
   (:func:`breastflow.train.checkpoint.save_checkpoint`);
3. the held-out (val + test) studies generated with ``breastflow generate``'s library
   call into ``synthetic/<name>/``;
4. :func:`breastflow.generate.compare.compare_with_baselines`: MAE inside the lesion
   boxes (where enhancement must be learnt), whole-image MAE, PSNR and SSIM on the
   per-case scale, model vs identity (pre itself) vs linear (global map fitted on train).

Run::

    .venv/bin/python benchmarks/bench_pix2pixhd_learning.py --out /tmp/learn --minutes 8 --json /tmp/learn.json

The slow test ``tests/generate/test_learning.py`` runs :func:`run` with a smaller budget.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

KEY = "bench-pix2pixhd-learning-key-0123456789abcdef"
#: split seed that, with KEY and the 12-study seed-0 cohort, holds 4 studies with 7 lesions out
#: (8 train / 2 val / 2 test); chosen from the split alone, before any training
SPLIT_SEED = 19


@dataclass(frozen=True)
class LearningSettings:
    """Settings of one learning run (recorded with the figures).

    Attributes:
        studies: phantom studies; seed: phantom seed; split_seed: patient split seed.
        minutes: CPU-time budget of the training loop (wall clock of this process' CPU time).
        max_epochs: stop after this many epochs even within budget.
        ngf, ndf, n_downsample, n_blocks: Pix2PixHD sizes (perceptual off).
        batch: slices per step; lesion_weight: how much more often lesion slices are drawn.
        lr: Adam learning rate (paper: 2e-4); norm: G and D normalisation (pix2pixHD: instance);
        lambda_fm: feature-matching weight (paper 003: 10); threads: torch intra-op threads.
        lambda_l1: pixel L1 weight (pix2pix's reconstruction term; 0 = paper 003 eq. 3).
        lambda_adv: adversarial weight (paper 003: 1; 0 with ``lambda_fm`` 0 = a plain L1 regressor
            with pix2pixHD's generator, the control that separates the architecture from the GAN terms).
        slices: ``all`` axial slices or ``lesion`` slices plus margin (paper 003's choice).
        lesion_t1_scale: the phantom's ``lesion_t1_scale`` (1.0 = lesions nearly isointense to FGT
            before contrast; 0.7 = clearly hypointense masses).
    """

    studies: int = 12
    seed: int = 0
    split_seed: int = SPLIT_SEED
    minutes: float = 8.0
    max_epochs: int = 200
    ngf: int = 16
    ndf: int = 16
    n_downsample: int = 3
    n_blocks: int = 3
    batch: int = 4
    lesion_weight: int = 4
    lr: float = 2e-4
    norm: str = "instance"
    slices: str = "all"
    lambda_fm: float = 10.0
    lambda_l1: float = 0.0
    lambda_adv: float = 1.0
    threads: int = 2
    train_seed: int = 0
    lesion_t1_scale: float = 1.0
    extra: dict = field(default_factory=dict)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_store(out: Path, settings: LearningSettings) -> str:
    """Write the phantom cohort and ingest it; returns the store path."""
    from breastflow.deid.pseudonym import pseudonym_key
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig
    from breastflow.store.splits import SplitConfig

    store = out / "store"
    if not (store / "catalog" / "catalog.parquet").exists():
        write_cohort(out / "phantom", PhantomConfig(studies=settings.studies, seed=settings.seed, t2_fraction=0.0,
                                                      lesion_t1_scale=settings.lesion_t1_scale))
        with pseudonym_key(KEY):
            run_ingest(str(out / "phantom" / "dicom"), str(store),
                       IngestConfig(cluster=ClusterConfig(workers=1), splits=SplitConfig(seed=settings.split_seed)))
    return str(store)


def size_batches(dataset, lesion_items: set[int], settings: LearningSettings, epoch: int) -> list[list[int]]:
    """Batches of one epoch: items grouped by slice size (no resampling), lesion items repeated, shuffled."""
    rng = random.Random(settings.train_seed * 1000 + epoch)
    groups: dict[tuple[int, int], list[int]] = {}
    shapes = {study: tuple(dataset.reader.shape(study, "pre")[1:]) for study in dataset.studies}
    for index, (study, _) in enumerate(dataset.items):
        y, x = shapes[study]
        copies = settings.lesion_weight if index in lesion_items else 1
        groups.setdefault((y, x), []).extend([index] * copies)
    batches = []
    for members in groups.values():
        rng.shuffle(members)
        batches += [members[i:i + settings.batch] for i in range(0, len(members), settings.batch)]
    rng.shuffle(batches)
    return batches


def lesion_item_indices(store: str, dataset) -> set[int]:
    """Items whose slice lies inside one of its study's lesion boxes."""
    from breastflow.store.annotation_commit import read_annotation_commit
    from breastflow.store.fs import StoreLocation

    loc = StoreLocation.from_url(store)
    spans: dict[str, list[tuple[int, int]]] = {}
    for study in dataset.studies:
        record = read_annotation_commit(loc, study)
        spans[study] = [(b.start_slice, b.end_slice) for b in (record.boxes if record else ()) if b.start_slice is not None]
    return {i for i, (study, z) in enumerate(dataset.items) if any(lo <= z <= hi for lo, hi in spans[study])}


def train(store: str, out: Path, settings: LearningSettings) -> tuple[Path, dict]:
    """Train in-process until the CPU budget or ``max_epochs``; returns the checkpoint folder and a log."""
    from breastflow.data.augment import AugmentConfig
    from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
    from breastflow.models import build_model
    from breastflow.train.checkpoint import save_checkpoint
    from breastflow.train.config import TrainRun

    torch.manual_seed(settings.train_seed)
    np.random.seed(settings.train_seed)
    torch.set_num_threads(settings.threads)
    spec = PairedPhasesSpec(targets=("post_1",), slices=settings.slices,
                            augment=AugmentConfig(seed=settings.train_seed))
    dataset = PairedPhasesDataset(store, spec)
    lesion_items = lesion_item_indices(store, dataset)
    options = {"ngf": settings.ngf, "ndf": settings.ndf, "n_downsample_global": settings.n_downsample,
               "n_blocks_global": settings.n_blocks, "perceptual": "off", "lr": settings.lr,
               "norm": settings.norm, "lambda_fm": settings.lambda_fm, "lambda_adv": settings.lambda_adv,
               **({"lambda_l1": settings.lambda_l1} if settings.lambda_l1 else {}),
               "epochs": settings.max_epochs, "decay_epochs": 0}
    model = build_model("pix2pixhd", options)
    model.train()
    start = cpu_seconds()
    wall = time.perf_counter()
    budget = settings.minutes * 60.0
    history = []
    steps = 0
    while model.epoch < settings.max_epochs and cpu_seconds() - start < budget:
        dataset.set_epoch(model.epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=size_batches(dataset, lesion_items, settings,
                                                                               model.epoch), num_workers=0)
        sums: dict[str, float] = {}
        n = 0
        for batch in loader:
            losses = model.train_step(batch)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            n += 1
            steps += 1
            if cpu_seconds() - start >= budget:
                break
        model.end_epoch()
        history.append({"epoch": model.epoch, **{k: v / max(n, 1) for k, v in sums.items()}})
    log = {"epochs": model.epoch, "steps": steps, "cpu_s": cpu_seconds() - start,
           "wall_s": time.perf_counter() - wall, "train_slices": len(dataset), "lesion_slices": len(lesion_items),
           "train_studies": len(dataset.studies), "history": history[-3:],
           "parameters": model.parameter_counts()}
    run = TrainRun(model="pix2pixhd", model_options=options, dataset_spec=spec.model_dump(mode="json"), store=store,
                   run="learning").model_dump(mode="json")
    folder = out / "checkpoint" / f"epoch_{model.epoch:06d}"
    save_checkpoint(folder, model, dataset.version, run)
    return folder, log


def held_out_and_train(store: str) -> tuple[list[str], list[str]]:
    """Studies of val + test, and of train, that have pre and post_1."""
    from breastflow.store.catalog import read_catalog
    from breastflow.store.fs import StoreLocation

    catalog = read_catalog(StoreLocation.from_url(store))
    series = catalog.groupby("study").series.agg(set)
    split = catalog.drop_duplicates("study").set_index("study").split
    usable = sorted(s for s in series.index if {"pre", "post_1"} <= series[s])
    return [s for s in usable if split[s] != "train"], [s for s in usable if split[s] == "train"]


def run(out: Path, settings: LearningSettings) -> dict:
    """The whole experiment; returns a JSON-able dict of settings, training log and the figures table."""
    from breastflow.generate.compare import compare_with_baselines
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import generate_synthetic

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    store = build_store(out, settings)
    held_out, train_studies = held_out_and_train(store)
    if not held_out:
        raise RuntimeError(f"split seed {settings.split_seed} holds no study out of {settings.studies}; choose another")
    checkpoint, log = train(store, out, settings)
    gen_cpu, gen_wall = cpu_seconds(), time.perf_counter()
    result = generate_synthetic(GenerateConfig(checkpoint=str(checkpoint), store=store, split=GenerateSplit.ALL,
                                               name="learning", batch=8))
    generation = {"cpu_s": cpu_seconds() - gen_cpu, "wall_s": time.perf_counter() - gen_wall,
                  "slices": result.slices}
    table = compare_with_baselines(store, "learning", held_out, train_studies)
    return {"settings": asdict(settings), "training": log, "generation": generation,
            "held_out_studies": len(held_out), "train_studies": len(train_studies),
            "figures": table.reset_index().to_dict(orient="records"), "total_wall_s": time.perf_counter() - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--n-blocks", type=int, default=3)
    parser.add_argument("--n-downsample", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lesion-weight", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--norm", default="instance", choices=["instance", "batch", "none"])
    parser.add_argument("--lambda-fm", type=float, default=10.0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--slices", default="all", choices=["all", "lesion"])
    parser.add_argument("--lambda-l1", type=float, default=0.0)
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--split-seed", type=int, default=SPLIT_SEED)
    parser.add_argument("--lesion-t1-scale", type=float, default=1.0)
    parser.add_argument("--lambda-adv", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = LearningSettings(minutes=args.minutes, max_epochs=args.max_epochs, ngf=args.ngf, ndf=args.ngf,
                                n_blocks=args.n_blocks, n_downsample=args.n_downsample, batch=args.batch,
                                lesion_weight=args.lesion_weight,
                                threads=args.threads, norm=args.norm, lambda_fm=args.lambda_fm, lr=args.lr,
                                slices=args.slices, lambda_l1=args.lambda_l1, studies=args.studies,
                                split_seed=args.split_seed, lesion_t1_scale=args.lesion_t1_scale,
                                lambda_adv=args.lambda_adv)
    report = run(args.out, settings)
    import pandas as pd

    print(pd.DataFrame(report["figures"]).set_index("candidate").to_string(float_format=lambda v: f"{v:.4f}"))
    print(json.dumps({k: v for k, v in report.items() if k != "figures"}, indent=1, default=str))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
