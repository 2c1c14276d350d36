"""bf16 autocast of the fold's U-Net: on CUDA only; the CPU keeps fp32 and exactly the same results.

Asserted here (CPU): ``FoldTrainConfig.amp`` changes no loss, weight or Dice of a CPU fold
(the helper gives no autocast at all there), and which devices get autocast. With CUDA
(skipped otherwise): one step's bf16 loss is close to the fp32 loss on a fixed batch, the
loss itself is fp32, and the sliding-window probabilities of both ways nearly agree.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss
from segmentation_helpers import box_volume

from breastflow.segmentation.plan import plan_from_shapes
from breastflow.segmentation.precision import amp_active, autocast, fp32_predictor
from breastflow.segmentation.train import (
    FoldTrainConfig,
    build_network,
    deep_supervision_loss,
    predict_probabilities,
    train_fold,
)

SHAPE = (8, 24, 32)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast applies on CUDA only")


@pytest.fixture(scope="module")
def plan():
    return plan_from_shapes([(2.0, 1.0, 1.0)] * 4, [SHAPE] * 4, quick=True)


def test_autocast_is_for_cuda_devices_only() -> None:
    assert amp_active("cuda", True) and amp_active("cuda:1", True) and amp_active(torch.device("cuda:0"), True)
    assert not amp_active("cuda", False)
    assert not amp_active("cpu", True) and not amp_active(torch.device("cpu"), True)
    context = autocast("cpu", True)
    assert isinstance(context, contextlib.nullcontext)
    a = torch.randn(4, 4)
    with context:
        assert not torch.is_autocast_enabled("cpu") and not torch.is_autocast_enabled("cuda")
        assert (a @ a).dtype == torch.float32


def test_amp_is_ignored_on_the_cpu_same_losses_weights_and_dice(plan) -> None:
    volumes = [box_volume(f"v{i}", i) for i in range(4)]
    results = {}
    for amp in (False, True):
        config = FoldTrainConfig.quick(epochs=2, iterations=3, torch_threads=1, prefetch=0, amp=amp)
        results[amp] = train_fold(volumes[:3], volumes[3:], plan, config)
    off, on = results[False], results[True]
    assert off.losses == on.losses  # exactly, not approximately
    assert off.val_dice == on.val_dice
    for (name, a), (_, b) in zip(off.network.state_dict().items(), on.network.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    probabilities = predict_probabilities(on.network, volumes[3].image, plan, FoldTrainConfig.quick(amp=True))
    assert np.array_equal(probabilities, predict_probabilities(on.network, volumes[3].image, plan,
                                                                FoldTrainConfig.quick(amp=False)))


def test_the_fp32_predictor_returns_float32(plan) -> None:
    network = build_network(plan).eval()
    with torch.no_grad():
        out = fp32_predictor(network, "cpu", True)(torch.randn(1, 1, *plan.patch_size, dtype=torch.float64).float())
    assert out.dtype == torch.float32 and out.shape[1] == 2


@CUDA
def test_bf16_loss_of_one_fixed_batch_is_close_to_fp32(plan) -> None:
    torch.manual_seed(0)
    network = build_network(plan).cuda().train()
    images = torch.randn(4, 1, *plan.patch_size, device="cuda")
    labels = (torch.rand(4, 1, *plan.patch_size, device="cuda") > 0.9).long()
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    values = {}
    for amp in (False, True):
        with autocast("cuda", amp):
            outputs = network(images)  # deep supervision: torch.stack promotes the heads to fp32 either way
        values[amp] = deep_supervision_loss(outputs.float(), labels, loss)
        assert values[amp].dtype == torch.float32
    fp32, bf16 = float(values[False]), float(values[True])
    # autocast really ran (bf16 numerics differ), and the loss stays close (H200: relative 2.6e-4 to 5.2e-4)
    assert bf16 != fp32 and np.isfinite(bf16) and abs(bf16 - fp32) <= 1e-2 * abs(fp32), (fp32, bf16)


@CUDA
def test_bf16_fold_trains_and_predicts_like_fp32(plan) -> None:
    volumes = [box_volume(f"v{i}", i) for i in range(4)]
    config = FoldTrainConfig.quick(epochs=2, iterations=3, device="cuda", prefetch=0, amp=True)
    result = train_fold(volumes[:3], volumes[3:], plan, config)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    on = predict_probabilities(result.network, volumes[3].image, plan, config)
    off = predict_probabilities(result.network, volumes[3].image, plan, config.model_copy(update={"amp": False}))
    assert on.dtype == off.dtype == np.float32 and on.shape == off.shape == (2, *SHAPE)
    assert np.allclose(on.sum(axis=0), 1.0, atol=1e-5)
    difference = np.abs(on - off)
    assert 0 < difference.max() < 0.1 and difference.mean() < 0.02, (difference.max(), difference.mean())
