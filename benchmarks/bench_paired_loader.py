"""``paired_phases`` loader throughput vs the raw slice reads underneath it (ratios in one run).

Usage::

    python benchmarks/bench_paired_loader.py [STORE] [--size 512] [--slices 32] [--studies 4] [--n 400]

Without ``STORE`` a synthetic store of ``--studies`` studies of ``(slices, size, size)``
uint16 (pre, post_1, lesion mask; all train patients) is written to a temporary
folder. Timed, interleaved round by round on the same random items:

* ``raw``: ``SliceReader.read_picks`` of pre, post_1 and mask (what an item reads);
* ``item``: ``PairedPhasesDataset[i]`` (reads + per-study unit + normalisation + tensors);
* ``item_aug``: the same with the paper's rot90 augmentation;

then one pass of a ``DataLoader(num_workers=2, batch_size=8)`` (timed after its first batch). Prints JSON with
items/s, CPU ms per item and the ratio item/raw.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from breastflow.data.augment import AugmentConfig
from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
from breastflow.data.slices import mask_series
from breastflow.store.annotation_commit import (
    LESION_MASK,
    AnnotationRecord,
    LesionBox,
    write_annotation_commit,
)
from breastflow.store.catalog import rebuild_catalog
from breastflow.store.commit import SeriesRecord, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split, SplitConfig, split_of
from breastflow.store.zarr_io import Geometry, write_mask, write_series

GEOMETRY = Geometry(spacing_mm=(2.0, 0.7, 0.7), origin_mm=(0.0, 0.0, 0.0), direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))


def synthetic_store(url: str, studies: int, shape: tuple[int, int, int]) -> StoreLocation:
    """Write ``studies`` train studies (pre, post_1, lesion mask) and the catalog."""
    loc, rng = StoreLocation.from_url(url), np.random.default_rng(0)
    names = (f"pat-{i}" for i in range(10_000))
    patients = [p for p in names if split_of(p, SplitConfig()) is Split.TRAIN][:studies]
    z, y, x = shape
    for i, patient in enumerate(patients):
        study = f"stu-{i}"
        pre = (rng.normal(600, 40, size=shape) * (np.hypot(*np.mgrid[0:y, 0:x] - y / 2) < 0.45 * y)).clip(0)
        for k, volume in enumerate((pre, pre * 1.1)):
            series = ("pre", "post_1")[k]
            written = write_series(loc, study, series, volume.astype(np.uint16), GEOMETRY,
                                   {"rescale_slope": 1.0, "rescale_intercept": 0.0})
            write_commit(loc, SeriesRecord(
                study=study, patient=patient, series=series, source_series=f"s{i}{k}", modality="MR",
                phase_index=k, shape=written.shape, dtype=written.dtype, spacing_mm=GEOMETRY.spacing_mm,
                content_hash=written.content_hash, source_fingerprint="f", n_source_files=z, source_bytes=0,
                breastflow_version="bench"))
        labels = np.zeros(shape, np.uint8)
        labels[z // 3:z // 2, y // 3:y // 2, x // 3:x // 2] = 1
        mask = write_mask(loc, study, LESION_MASK, labels, GEOMETRY, {})
        box = LesionBox(lesion_id=1, series="pre", start_slice=z // 3, end_slice=z // 2 - 1, start_row=y // 3,
                        end_row=y // 2 - 1, start_column=x // 3, end_column=x // 2 - 1)
        write_annotation_commit(loc, AnnotationRecord(
            study=study, patient=patient, source_format="phantom", boxes=(box,), n_lesions=1, has_mask=True,
            mask_series="pre", mask_shape=shape, mask_hash=mask.content_hash, source_fingerprint="a",
            breastflow_version="bench"))
    rebuild_catalog(loc, SplitConfig())
    return loc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", nargs="?")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = args.store or synthetic_store(tempfile.mkdtemp(prefix="bench-paired-") + "/store", args.studies,
                                        (args.slices, args.size, args.size)).url
    plain = PairedPhasesDataset(url, PairedPhasesSpec())
    augmented = PairedPhasesDataset(url, PairedPhasesSpec(augment=AugmentConfig()))
    order = np.random.default_rng(0).permutation(len(plain))[:args.n].tolist()
    plain[0], augmented[0]  # open readers, compute units (once per process, like a worker's first item)

    def raw(i: int) -> None:
        study, z = plain.items[i]
        picks = [(study, "pre", z), (study, "post_1", z)]
        if study in plain.with_mask:
            picks.append((study, mask_series(LESION_MASK), z))
        plain.reader.read_picks(picks)

    runners = {"raw": raw, "item": plain.__getitem__, "item_aug": augmented.__getitem__}
    wall = dict.fromkeys(runners, 0.0)
    cpu = dict.fromkeys(runners, 0.0)
    for _ in range(args.rounds):
        for name, run in runners.items():
            w, c = time.perf_counter(), time.process_time()
            for i in order:
                run(i)
            wall[name] += time.perf_counter() - w
            cpu[name] += time.process_time() - c
    total = args.rounds * len(order)
    results = {name: {"items_per_s": round(total / wall[name], 1), "cpu_ms_per_item": round(1e3 * cpu[name] / total, 3)}
               for name in runners}
    results["ratio_item_over_raw_cpu"] = round(cpu["item"] / cpu["raw"], 2)
    loader = torch.utils.data.DataLoader(augmented, batch_size=8, num_workers=2, shuffle=True)
    batches = iter(loader)
    next(batches)  # worker start-up (fork, first reads) is not throughput
    w = time.perf_counter()
    seen = sum(len(batch["key"]) for batch in batches)
    results["dataloader_2_workers_items_per_s"] = round(seen / (time.perf_counter() - w), 1)
    results["setup"] = {"store": url, "items": len(plain), "image": list(plain[0]["image"].shape),
                        "rounds": args.rounds, "n": len(order)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
