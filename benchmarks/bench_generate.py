"""Generation slices/s of ``breastflow generate`` vs the bare generator forward on the same batches (one run).

Usage::

    python benchmarks/bench_generate.py [STORE] [--studies 4] [--split all] [--ngf 16] [--batch 8]
                                        [--rounds 5] [--device cpu|cuda] [--json PATH]

With ``STORE`` the synthetic sets ``bench-generate`` and ``bench-with-model`` are written
into it. Without ``STORE`` a tiny phantom cohort (``--studies``, seed 0, TINY profile: 64-96 matrix)
is written and ingested into a temporary store (removed at the end unless ``--keep``). A randomly initialised Pix2PixHD (the full
layout: 4 downsamplings, 9 residual blocks; ``ngf = ndf = --ngf``; perceptual off) is saved
with the engine's checkpoint layout (:func:`breastflow.train.checkpoint.save_checkpoint`,
``paired_phases`` pre -> post_1 at the stored size). Timed, alternating round by round
(order flipped every round), each over every slice of the split:

* ``forward``: the generator alone on the same inputs: the split's pre-contrast volumes,
  read and normalised once beforehand, through
  :func:`breastflow.generate.volume.generate_volume` (batches of ``--batch`` slices,
  reflection-padded to the size multiple, ``model.generate`` in inference mode, cropped);
* ``with_model``: :func:`breastflow.generate.run.generate_with_model` with the model already
  loaded: read the pre-contrast volume, normalise, pad, generator, crop, invert the
  normalisation into the real dtype, write the synthetic series, read it back and compare
  voxel for voxel, commit;
* ``generate``: :func:`breastflow.generate.run.generate_synthetic`, what ``breastflow
  generate`` runs (``with_model`` plus loading the checkpoint).

Figures: median slices/s over rounds (wall) and CPU ms per slice (``time.process_time``;
CUDA: wall only, synchronised), and ``overhead_*`` = forward slices/s / slices/s of the
full path (1.0 = no overhead). Generation runs in fp32 (as ``breastflow generate`` does,
also on CUDA).
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

import numpy as np
import torch

KEY = "bench-generate-key-0123456789abcdef0123456789"


def build_phantom_store(out: Path, studies: int) -> str:
    """Write a tiny phantom cohort and ingest it (in-process); returns the store path."""
    from breastflow.deid.pseudonym import pseudonym_key
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig

    store = out / "store"
    write_cohort(out / "phantom", PhantomConfig(studies=studies, seed=0, t2_fraction=0.0))
    with pseudonym_key(KEY):
        run_ingest(str(out / "phantom" / "dicom"), str(store), IngestConfig(cluster=ClusterConfig(workers=1)))
    return str(store)


def random_checkpoint(folder: Path, store: str, ngf: int) -> Path:
    """A randomly initialised full-layout Pix2PixHD saved as the engine saves it; returns the folder."""
    from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
    from breastflow.models import build_model
    from breastflow.train.checkpoint import save_checkpoint
    from breastflow.train.config import TrainRun

    torch.manual_seed(0)
    options = {"ngf": ngf, "ndf": ngf, "perceptual": "off", "epochs": 1, "decay_epochs": 0}
    spec = PairedPhasesSpec(targets=("post_1",))
    run = TrainRun(model="pix2pixhd", model_options=options, dataset_spec=spec.model_dump(mode="json"), store=store,
                   run="bench").model_dump(mode="json")
    save_checkpoint(folder, build_model("pix2pixhd", options), PairedPhasesDataset(store, spec).version, run)
    return folder


def normalised_volumes(store: str, split: Any) -> list[np.ndarray]:
    """The split's pre-contrast volumes, normalised as generation normalises them, read once (in generation order)."""
    from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
    from breastflow.store.catalog import read_catalog
    from breastflow.store.fs import StoreLocation

    present = set(read_catalog(StoreLocation.from_url(store)).split.unique())
    out = []
    for s in (s for s in split.splits() if s.value in present):  # the splits generation covers, in its order
        dataset = PairedPhasesDataset(store, PairedPhasesSpec(targets=("post_1",), split=s))
        for study in dataset.studies:
            z = dataset.reader.shape(study, "pre")[0]
            pre = dataset.reader.read_slices(study, "pre", list(range(z)))
            out.append(dataset.intensity_map(study, "pre").normalise(pre))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", nargs="?", help="an ingested store (default: a new tiny phantom store)")
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--split", default="all", choices=["train", "val", "test", "all"])
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary store and checkpoint")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                              "loadavg_before": os.getloadavg()}
    work = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    try:
        report.update(measure(args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["loadavg_after"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    print(text)
    if args.json is not None:
        args.json.write_text(text)


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Build the store (unless given) and the checkpoint under ``work``, time the three paths; the figures."""
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import (
        GeneratorSource,
        generate_synthetic,
        generate_with_model,
        paired_spec_of,
    )
    from breastflow.generate.volume import generate_volume
    from breastflow.store.fs import StoreLocation
    from breastflow.train.checkpoint import load_checkpoint

    cuda = torch.device(args.device).type == "cuda"
    report: dict[str, Any] = {}
    t0 = time.perf_counter()
    store = args.store or build_phantom_store(work, args.studies)
    report["store_build_s"] = round(time.perf_counter() - t0, 1)
    checkpoint = random_checkpoint(work / "checkpoint" / "epoch_000001", store, args.ngf)
    split = GenerateSplit(args.split)
    config = GenerateConfig(checkpoint=str(checkpoint), store=store, split=split, name="bench-generate",
                            batch=args.batch, device=args.device)
    model, meta = load_checkpoint(str(checkpoint), device=args.device)
    spec = paired_spec_of(meta.train_run, meta.uri, meta.model)
    source = GeneratorSource(checkpoint=str(checkpoint), model=meta.model, run="bench", epoch=meta.epoch,
                             step=meta.step, dataset_version=meta.dataset_version)
    loc = StoreLocation.from_url(store)
    volumes = normalised_volumes(store, split)
    slices = sum(len(v) for v in volumes)

    def forward() -> None:  # the same batches, values and padding as generation, nothing read or written
        for volume in volumes:
            generate_volume(model, volume, 1, None, args.batch)

    runners = {
        "forward": forward,
        "with_model": lambda: generate_with_model(model, spec, loc, split, "bench-with-model", source, args.batch),
        "generate": lambda: generate_synthetic(config),
    }
    written = generate_synthetic(config)  # warm-up (allocator, first writes); checks the slice count
    if written.slices != slices:
        raise RuntimeError(f"generate wrote {written.slices} slices, the forward batches hold {slices}")
    for run in runners.values():
        run()
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in runners}
    names = list(runners)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            if cuda:
                torch.cuda.synchronize()
            wall, cpu = time.perf_counter(), time.process_time()
            runners[name]()
            if cuda:
                torch.cuda.synchronize()
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    for name in runners:
        wall, cpu = statistics.median(times[name]["wall"]), statistics.median(times[name]["cpu"])
        report[name] = {"slices_per_s": round(slices / wall, 2), "wall_s_rounds": [round(t, 3) for t in times[name]["wall"]]}
        if not cuda:
            report[name]["cpu_ms_per_slice"] = round(1e3 * cpu / slices, 2)
    for name in ("with_model", "generate"):
        report[f"overhead_{name}_wall"] = round(report["forward"]["slices_per_s"] / report[name]["slices_per_s"], 3)
        if not cuda:
            report[f"overhead_{name}_cpu"] = round(report[name]["cpu_ms_per_slice"] / report["forward"]["cpu_ms_per_slice"], 3)
    multiple = model.config.size_multiple
    shapes = sorted({tuple(max(-(-n // multiple) * multiple, 2 * multiple) for n in v.shape[1:]) for v in volumes})
    report["setup"] = {"store": store, "split": args.split, "studies": len(written.studies), "slices": slices,
                       "generator_input_shapes": [list(s) for s in shapes], "batch": args.batch, "ngf": args.ngf,
                       "parameters": model.parameter_counts(), "rounds": args.rounds,
                       "checkpoint_mb": round((checkpoint / "state.pt").stat().st_size / 2**20, 1),
                       "stored_dtype": str(np.dtype(next(iter(_dtypes(loc, written.studies)))))}
    return report


def _dtypes(loc: Any, studies: list[str]) -> set[str]:
    from breastflow.store.commit import read_commit

    return {read_commit(loc, study, "post_1").dtype for study in studies}


if __name__ == "__main__":
    main()
