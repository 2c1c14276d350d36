"""The fold's patch loader: indices computed once per volume and a prefetching worker change no patch and no loss.

``patch_inputs`` pads each volume and computes its label's foreground/background
indices once (MONAI's ``FgBgToIndicesd``); the sampler then crops with them instead
of rescanning the label. ``EpochPrefetcher`` draws an epoch's batches in a worker
thread. Asserted: the same batches as the per-call path for the same seeds, the
same losses and weights with and without prefetching (and after a resume), the
worker's errors raised in the caller, and no worker left running.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from segmentation_helpers import box_volume

from breastflow.segmentation import train as train_module
from breastflow.segmentation.plan import plan_from_shapes
from breastflow.segmentation.train import (
    BG_INDICES,
    FG_INDICES,
    EpochPrefetcher,
    FoldState,
    FoldTrainConfig,
    Volume,
    _batch,
    patch_inputs,
    patch_sampler,
    train_fold,
)

SHAPE = (8, 24, 32)


@pytest.fixture(scope="module")
def plan():
    return plan_from_shapes([(2.0, 1.0, 1.0)] * 4, [SHAPE] * 4, quick=True)


@pytest.fixture(scope="module")
def volumes() -> list[Volume]:
    """Volumes at the plan's shape, one smaller than the patch (padded), one without lesion."""
    return [box_volume(f"v{i}", i) for i in range(4)] + [box_volume("small", 9, (6, 14, 20)),
                                                         box_volume("empty", 10, lesion=False)]


def draw(inputs, plan, config: FoldTrainConfig, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    sampler = patch_sampler(plan, config)
    sampler.set_random_state(seed=config.seed)
    rng = np.random.default_rng(config.seed)
    return [_batch(inputs, sampler, config, rng) for _ in range(n)]


@pytest.mark.filterwarnings("ignore:Num foregrounds 0")
def test_cached_indices_draw_the_same_patches_as_rescanning_the_label(plan, volumes) -> None:
    config = FoldTrainConfig.quick(batch_size=3, seed=5)
    inputs = patch_inputs(volumes, plan)
    small = inputs[4]
    assert small["image"].shape == (1, *plan.patch_size) and small["image"].dtype == np.float32
    assert small[FG_INDICES].dtype == np.int32 and len(small[FG_INDICES]) == int(volumes[4].mask.sum())
    # MONAI 1.6 on a uint8 MetaTensor label: torch.any keeps uint8, so ~ leaves every voxel "background";
    # the per-call path does the same, and the patches must not change.
    assert len(small[BG_INDICES]) in (int(np.prod(plan.patch_size)) - 48, int(np.prod(plan.patch_size)))
    assert len(inputs[5][FG_INDICES]) == 0
    rescanned, cached = draw(volumes, plan, config, 25), draw(inputs, plan, config, 25)
    for (images, labels), (images2, labels2) in zip(rescanned, cached, strict=True):
        assert images.dtype == images2.dtype and labels.dtype == labels2.dtype
        assert torch.equal(images, images2) and torch.equal(labels, labels2)
    assert sum(int(labels.sum()) for _, labels in cached) > 0  # foreground patches were drawn
    other = draw(inputs, plan, config.model_copy(update={"seed": 6}), 1)[0][0]
    assert not torch.equal(other, cached[0][0])  # the comparison can fail: another seed, other patches


def test_prefetcher_yields_every_item_in_order_and_stops_its_worker() -> None:
    for depth in (0, 1, 3):
        counter = iter(range(100))
        threads: set[str] = set()

        def item(counter=counter, threads=threads) -> int:
            threads.add(threading.current_thread().name)
            return next(counter)

        with EpochPrefetcher(item, 7, depth) as items:
            assert list(items) == list(range(7))
        assert next(counter) == 7  # nothing drawn past the count
        assert threads == ({threading.current_thread().name} if depth == 0 else {"patch-prefetch"})
    assert not [t for t in threading.enumerate() if t.name == "patch-prefetch"]


def test_prefetcher_raises_the_worker_error_in_the_caller() -> None:
    calls = []

    def failing() -> int:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("sampler broke on draw 3")
        return len(calls)

    got = []
    with pytest.raises(RuntimeError, match="sampler broke on draw 3"), EpochPrefetcher(failing, 10, 2) as items:
        got.extend(items)
    assert got == [1, 2] and len(calls) == 3
    assert not [t for t in threading.enumerate() if t.name == "patch-prefetch"]


def test_leaving_the_prefetcher_early_stops_the_worker() -> None:
    calls = []
    with pytest.raises(ValueError, match="network step failed"), \
            EpochPrefetcher(lambda: calls.append(1) or len(calls), 1000, 2) as items:
        for value in items:
            if value == 2:
                raise ValueError("network step failed")
    assert len(calls) <= 2 + 2 + 1  # consumed, queued, and at most one being drawn
    assert not [t for t in threading.enumerate() if t.name == "patch-prefetch"]
    with pytest.raises(ValueError, match="depth -1"):
        EpochPrefetcher(lambda: 0, 1, -1)


def test_prefetching_trains_the_same_fold_and_resumes_to_the_same_losses(plan, volumes) -> None:
    train, val = volumes[:4], volumes[4:5]
    base = FoldTrainConfig.quick(epochs=4, iterations=3, torch_threads=1)
    serial = train_fold(train, val, plan, base.model_copy(update={"prefetch": 0}))
    states: list[FoldState] = []
    prefetched = train_fold(train, val, plan, base.model_copy(update={"prefetch": 3}), 
                            on_epoch=lambda state: states.append(copy.deepcopy(state)))
    np.testing.assert_allclose(prefetched.losses, serial.losses, rtol=1e-6)
    for name, value in serial.network.state_dict().items():
        assert torch.allclose(value, prefetched.network.state_dict()[name], atol=1e-6), name
    resumed = train_fold(train, val, plan, base, resume=states[1])
    assert resumed.start_epoch == 2
    np.testing.assert_allclose(resumed.losses, serial.losses, rtol=1e-4)
    assert resumed.val_dice == pytest.approx(serial.val_dice, abs=1e-3)
    assert not [t for t in threading.enumerate() if t.name == "patch-prefetch"]


def test_a_sampler_error_in_the_worker_reaches_the_caller_of_train_fold(plan, volumes, monkeypatch) -> None:
    real, calls = train_module._batch, []

    def flaky(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 5:
            raise RuntimeError("patch 5 could not be cropped")
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_batch", flaky)
    with pytest.raises(RuntimeError, match="patch 5 could not be cropped"):
        train_fold(volumes[:4], [], plan, FoldTrainConfig.quick(epochs=3, iterations=3, torch_threads=1))
    assert set(calls) == {"patch-prefetch"} and len(calls) == 5
    assert not [t for t in threading.enumerate() if t.name == "patch-prefetch"]
