"""Timing helpers of bench_segmentation_folds.py: the patch sampler's rate (labels rescanned vs indices
cached), one timed ``train_fold``, serial / prefetched and fp32 / bf16 ratios, a paper-sized volume, network
steps, and the bf16-vs-fp32 loss of one fixed batch.

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
    """One ``train_fold`` with per-epoch wall times (epoch ends seen by ``on_epoch``), then validation.

    On CUDA the trained network is validated again at the other precision (``val_dice_amp_flipped``:
    ``config.amp`` negated), untimed, so bf16 and fp32 inference are compared on the same weights.
    """
    from breastflow.segmentation.precision import amp_active
    from breastflow.segmentation.train import (
        dice_score,
        predict_probabilities,
        train_fold,
    )

    marks: list[float] = []
    start = time.perf_counter()
    result = train_fold(train, val, plan, config, on_epoch=lambda state: marks.append(time.perf_counter()))
    end = time.perf_counter()
    epochs = np.diff([start, *marks])
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    flipped = {}
    if config.device.startswith("cuda") and val:
        other = config.model_copy(update={"amp": not config.amp})
        scores = [dice_score(predict_probabilities(result.network, v.image, plan, other), v.mask) for v in val]
        flipped = {"val_dice_amp_flipped": round(float(np.mean(scores)), 3)}
    return {"device": config.device, "torch_threads": config.torch_threads, "prefetch": config.prefetch,
            "amp": config.amp, "amp_on": amp_active(config.device, config.amp), "epochs": config.epochs,
            "iterations": config.iterations, "batch": config.batch_size, "optimizer": config.optimizer.value,
            "train_s": round(marks[-1] - start, 2), "first_epoch_s": round(float(epochs[0]), 3),
            "median_epoch_s": round(float(steady), 3), "steps_per_s": round(config.iterations / steady, 2),
            "validation_s": round(end - marks[-1], 2), "val_dice": round(result.val_dice, 3),
            "last_loss": round(result.losses[-1], 4)} | flipped


def _medians(figures: list[dict], key) -> dict:
    groups: dict = {}
    for f in figures:
        groups.setdefault(key(f), []).append(f["median_epoch_s"])
    return {k: statistics.median(v) for k, v in groups.items()}


def prefetch_ratios(figures: list[dict]) -> dict:
    """``{device+threads[+bf16]: {prefetch p: serial median epoch / prefetch-p median epoch}}`` where both ran."""
    epochs = _medians(figures, lambda f: (f["device"], f["torch_threads"], f.get("amp_on", False), f["prefetch"]))
    out: dict = {}
    for (device, threads, amp, prefetch), seconds in epochs.items():
        serial = epochs.get((device, threads, amp, 0))
        if prefetch and serial is not None:
            out.setdefault(f"{device}{threads or ''}{'_bf16' if amp else ''}", {})[f"prefetch{prefetch}"] = \
                round(serial / seconds, 2)
    return out


def amp_ratios(figures: list[dict]) -> dict:
    """``{device+threads+prefetch: fp32 median epoch / bf16 median epoch}`` (medians over rounds) where both ran.

    ``amp_on``: bf16 autocast in effect (``amp`` on a CUDA device); a CPU run with ``amp`` is fp32.
    """
    epochs = _medians(figures, lambda f: (f["device"], f["torch_threads"], f["prefetch"], f.get("amp_on", False)))
    return {f"{d}{t or ''}_prefetch{p}": round(s / epochs[(d, t, p, True)], 2)
            for (d, t, p, amp), s in epochs.items() if not amp and (d, t, p, True) in epochs}


def amp_loss_check(plan, device: str, batch: int = 2, seed: int = 0) -> dict:
    """The deep-supervision loss of one fixed random batch in fp32 and under bf16 autocast (same weights).

    What ``train.py`` does: the forward under :func:`~breastflow.segmentation.precision.autocast`, the
    loss on ``outputs.float()``. ``rel_diff``: ``|bf16 - fp32| / fp32``; also the largest difference of the
    full-resolution head's softmax.
    """
    from monai.losses import DiceCELoss

    from breastflow.segmentation.precision import autocast
    from breastflow.segmentation.train import build_network, deep_supervision_loss

    torch.manual_seed(seed)
    network, loss = build_network(plan).to(device).train(), DiceCELoss(to_onehot_y=True, softmax=True)
    images = torch.randn((batch, 1, *plan.patch_size), device=device)
    labels = (torch.rand((batch, 1, *plan.patch_size), device=device) > 0.9).long()
    values, probabilities = {}, {}
    with torch.no_grad():
        for amp in (False, True):
            with autocast(device, amp):
                outputs = network(images)
            values[amp] = float(deep_supervision_loss(outputs.float(), labels, loss))
            probabilities[amp] = torch.softmax(outputs.float()[:, 0] if outputs.dim() == 6 else outputs.float(), 1)
    return {"device": device, "patch_size": list(plan.patch_size), "fp32_loss": round(values[False], 6),
            "bf16_loss": round(values[True], 6),
            "rel_diff": round(abs(values[True] - values[False]) / abs(values[False]), 6),
            "max_softmax_diff": round(float((probabilities[True] - probabilities[False]).abs().max()), 5)}


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
    """Seconds per SGD training step (batch 2, random patches, deep supervision) after ``warmup`` steps.

    ``bf16``: as ``train.py`` with ``FoldTrainConfig.amp`` (forward under bf16 autocast on CUDA, loss in fp32).
    """
    from monai.losses import DiceCELoss

    from breastflow.segmentation.precision import autocast
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
        with autocast(device, bf16):
            outputs = network(images)
        value = deep_supervision_loss(outputs.float(), labels, loss)
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
