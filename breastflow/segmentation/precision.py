"""Mixed precision of the segmentation U-Net: bf16 autocast on CUDA, plain fp32 everywhere else.

nnU-Net trains with automatic mixed precision; on an H200 bf16 autocast made a paper-sized
training step (patch 112x160x160) 1.47x faster than fp32 (docs/segmentation.md, "GPU (H200)").
bf16 keeps fp32's exponent range, so no gradient scaler is needed. On the CPU nothing changes:
the helpers give a null context there, so CPU folds compute exactly what they did before.
"""

from __future__ import annotations

import contextlib

import torch


def amp_active(device: str | torch.device, amp: bool) -> bool:
    """Whether bf16 autocast applies: ``amp`` asked for and ``device`` a CUDA device.

    Args:
        device: a torch device or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        amp: the configuration's wish (``FoldTrainConfig.amp``).

    Raises:
        RuntimeError: ``device`` is not a torch device name (torch's own error).
    """
    return amp and torch.device(device).type == "cuda"


def autocast(device: str | torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """A context in which the network runs in bf16 on CUDA (``amp`` and a CUDA device), else fp32 unchanged.

    Returns:
        ``torch.autocast("cuda", dtype=torch.bfloat16)`` when :func:`amp_active`, otherwise a
        :func:`contextlib.nullcontext` (no autocast at all: CPU results stay bit for bit the same).
    """
    if not amp_active(device, amp):
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def fp32_predictor(network: torch.nn.Module, device: str | torch.device, amp: bool):
    """``network`` as a predictor whose forward runs under :func:`autocast` and whose output is fp32.

    For :func:`monai.inferers.sliding_window_inference`: the windows' logits come back as float32,
    so the Gaussian-weighted accumulation and the softmax after it stay in fp32.
    """

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return network(inputs).float()

    return predict
