"""How much lesion enhancement can *any* pre -> post map learn from the phantom? A regression headroom check.

``bench_pix2pixhd_learning.py`` asks whether Pix2PixHD beats the identity and
linear baselines inside the held-out lesion boxes. This script asks the prior
question: with the same store, split and figures, does a plain convolutional
regressor trained only on a pixel L1 loss (no GAN, no noise synthesis; the
easiest setting for a pixel error) get there? It trains a small residual CNN
(``post = pre + f(pre)``, five 3x3 conv layers with dilations 1-2-4-1, 32
channels, voxels inside lesion boxes weighted ``--box-weight`` times) for a
wall-clock budget on the training studies, then reports, on the held-out
studies and on the per-case scale of ``breastflow demo``:

* MAE in the lesion boxes (the issue's criterion) and over the whole volume;
* the box split into lesion voxels (the stored ``lesions`` mask) and the rest,
  with the signed mean error, so the reader sees *where* each candidate fails.

Run::

    .venv/bin/python benchmarks/bench_enhancement_headroom.py --out /tmp/learn --studies 48 --split-seed 0 --seconds 200

``--out`` may be a folder already built by ``bench_pix2pixhd_learning.py`` with
the same ``--studies``/``--split-seed`` (its store is reused); with
``--synthetic NAME`` the synthetic set of that run is decomposed as well.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pix2pixhd_learning import LearningSettings, build_store, held_out_and_train


def load(loc, study: str, synthetic_loc=None) -> dict[str, np.ndarray]:
    """pre, post_1, lesion boxes, lesion mask (and the synthetic post_1) of one study on the per-case scale."""
    from breastflow.data.slices import SliceReader, mask_series
    from breastflow.demo import per_case_scale
    from breastflow.generate.compare import lesion_region, read_physical

    pre = read_physical(loc, study, "pre")
    scale = per_case_scale(pre)
    reader = SliceReader(loc)
    try:
        mask = reader.read_slices(study, mask_series("lesions"), list(range(pre.shape[0]))) > 0
    except FileNotFoundError:
        mask = np.zeros(pre.shape, dtype=bool)
    out = {"pre": pre / scale, "post": read_physical(loc, study, "post_1") / scale,
           "box": lesion_region(loc, study, pre.shape), "mask": mask}
    if synthetic_loc is not None:
        out["synthetic"] = read_physical(synthetic_loc, study, "post_1") / scale
    return out


def residual_cnn() -> torch.nn.Module:
    layers, channels = [], 1
    for dilation in (1, 2, 4, 1):
        layers += [torch.nn.Conv2d(channels, 32, 3, padding=dilation, dilation=dilation), torch.nn.ReLU()]
        channels = 32
    return torch.nn.Sequential(*layers, torch.nn.Conv2d(32, 1, 1))


def train_cnn(train: list[dict], seconds: float, box_weight: float, seed: int) -> tuple[torch.nn.Module, int]:
    """L1-train the residual CNN on single slices for ``seconds`` of wall time; returns it and the step count."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = residual_cnn()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    slices = [tuple(torch.from_numpy(np.ascontiguousarray(s[k][z], dtype=np.float32))[None, None]
                    for k in ("pre", "post", "box")) for s in train for z in range(s["pre"].shape[0])]
    start, steps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        x, y, box = slices[int(rng.integers(len(slices)))]
        loss = ((x + net(x) - y).abs() * (1.0 + (box_weight - 1.0) * box)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    return net, steps


def predict(net: torch.nn.Module, pre: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(pre.astype(np.float32))[:, None]
        return (x + net(x))[:, 0].numpy()


def main() -> None:
    from breastflow.demo import fit_linear_baseline
    from breastflow.generate.synthetic import synthetic_location
    from breastflow.store.fs import StoreLocation

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--studies", type=int, default=12)
    parser.add_argument("--split-seed", type=int, default=19)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--box-weight", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lesion-t1-scale", type=float, default=1.0)
    parser.add_argument("--synthetic", default=None, help="also decompose this synthetic set (e.g. 'learning')")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    store = build_store(args.out, LearningSettings(studies=args.studies, split_seed=args.split_seed,
                                                         lesion_t1_scale=args.lesion_t1_scale))
    held, train_ids = held_out_and_train(store)
    loc = StoreLocation.from_url(store)
    sloc = synthetic_location(loc, args.synthetic) if args.synthetic else None
    train = [load(loc, s) for s in train_ids]
    held_out = [load(loc, s, sloc) for s in held]
    a, b = fit_linear_baseline([(s["pre"], s["post"]) for s in train])
    net, steps = train_cnn(train, args.seconds, args.box_weight, seed=0)
    rows: dict[str, dict[str, float]] = {}
    for case in held_out:
        guesses = {"identity": case["pre"], "linear": a * case["pre"] + b, "l1_cnn": predict(net, case["pre"])}
        if "synthetic" in case:
            guesses["pix2pixhd"] = case["synthetic"]
        regions = {"box": case["box"], "lesion": case["box"] & case["mask"], "box_rest": case["box"] & ~case["mask"],
                   "whole": np.ones(case["pre"].shape, dtype=bool)}
        for name, guess in guesses.items():
            for region, where in regions.items():
                err = (guess - case["post"])[where]
                row = rows.setdefault(name, {})
                row.setdefault(f"_abs_{region}", []).append(np.abs(err))
                row.setdefault(f"_sig_{region}", []).append(err)
    table = {}
    for name, row in rows.items():
        table[name] = {}
        for key, parts in row.items():
            values = np.concatenate(parts)
            kind, region = key[1:4], key[5:]
            table[name][f"{'mae' if kind == 'abs' else 'bias'}_{region}"] = float(values.mean()) if values.size else float("nan")
    real = {"post_lesion": float(np.concatenate([c["post"][c["box"] & c["mask"]] for c in held_out]).mean()),
            "pre_lesion": float(np.concatenate([c["pre"][c["box"] & c["mask"]] for c in held_out]).mean())}
    report = {"studies": args.studies, "lesion_t1_scale": args.lesion_t1_scale, "split_seed": args.split_seed,
              "train_studies": len(train),
              "held_out_studies": len(held_out), "cnn_steps": steps, "cnn_seconds": args.seconds,
              "linear": [a, b], "real_means": real, "table": table}
    import pandas as pd

    print(pd.DataFrame(table).T.to_string(float_format=lambda v: f"{v:.3f}"))
    print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
