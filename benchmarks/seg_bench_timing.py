"""Timing helpers of bench_segmentation_folds.py: the patch sampler's rate (labels rescanned vs indices
cached), one timed ``train_fold``, serial / prefetched ratios, a paper-sized volume, network steps.

No CLI: ``bench_segmentation_folds.py`` (same folder) imports them.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sampler_rates(volumes, plan, config, n_batches: int, rounds: int) -> dict:
    """Patches/s of ``_batch`` (to ``config.device``, one torch thread): ``rescan`` vs ``cached`` inputs.

    The two alternate for ``rounds`` (medians; each round a fresh sampler and generator, one batch of
    warm-up); ``prepare_s``: seconds of ``patch_inputs`` (once per fold in ``train_fold``).
    """
    from breastflow.segmentation.train import _batch, patch_inputs, patch_sampler

    torch.set_num_threads(1)
    start = time.perf_counter()
    inputs = {"rescan": volumes, "cached": patch_inputs(volumes, plan)}
    prepare_s = time.perf_counter() - start
    rates: dict[str, list[float]] = {"rescan": [], "cached": []}
    for _ in range(rounds):
        for kind, source in inputs.items():
            sampler, rng = patch_sampler(plan, config), np.random.default_rng(0)
            _batch(source, sampler, config, rng)
            _sync(config.device)
            start = time.perf_counter()
            for _ in range(n_batches):
                _batch(source, sampler, config, rng)
            _sync(config.device)
            rates[kind].append(n_batches * config.batch_size / (time.perf_counter() - start))
    out = {f"{kind}_patches_per_s": round(statistics.median(v), 2) for kind, v in rates.items()}
    return out | {"cached_over_rescan": round(out["cached_patches_per_s"] / out["rescan_patches_per_s"], 1),
                  "prepare_s": round(prepare_s, 3), "rounds": rounds}


def time_fold(train, val, plan, config) -> dict:
    """One ``train_fold`` with per-epoch wall times (epoch ends seen by ``on_epoch``), then validation."""
    from breastflow.segmentation.train import train_fold

    marks: list[float] = []
    start = time.perf_counter()
    result = train_fold(train, val, plan, config, on_epoch=lambda state: marks.append(time.perf_counter()))
    end = time.perf_counter()
    epochs = np.diff([start, *marks])
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    return {"device": config.device, "torch_threads": config.torch_threads, "prefetch": config.prefetch,
            "epochs": config.epochs,
            "iterations": config.iterations, "batch": config.batch_size, "optimizer": config.optimizer.value,
            "train_s": round(marks[-1] - start, 2), "first_epoch_s": round(float(epochs[0]), 3),
            "median_epoch_s": round(float(steady), 3), "steps_per_s": round(config.iterations / steady, 2),
            "validation_s": round(end - marks[-1], 2), "val_dice": round(result.val_dice, 3),
            "last_loss": round(result.losses[-1], 4)}


def prefetch_ratios(figures: list[dict]) -> dict:
    """``{device+threads: {prefetch p: serial median epoch / prefetch-p median epoch}}`` where both ran."""
    serial = {(f["device"], f["torch_threads"]): f["median_epoch_s"] for f in figures if f["prefetch"] == 0}
    out: dict = {}
    for f in figures:
        key = (f["device"], f["torch_threads"])
        if f["prefetch"] and key in serial:
            out.setdefault(f"{key[0]}{key[1] or ''}", {})[f"prefetch{f['prefetch']}"] = \
                round(serial[key] / f["median_epoch_s"], 2)
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
