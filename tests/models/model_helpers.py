"""Helpers of the model tests: a random-init VGG19 file in torchvision's layout, tiny configs."""

from __future__ import annotations

from pathlib import Path

import torch

from breastflow.models.pix2pixhd.vgg import Vgg19Features

#: the smallest pix2pixhd that still has every part (fast on one core at 32x32)
TINY = {"ngf": 8, "ndf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "epochs": 2, "decay_epochs": 2}
TINY_OFF = {**TINY, "perceptual": "off"}


def save_torchvision_vgg19(path: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Write a randomly initialised VGG19 as a torchvision ``vgg19().state_dict()`` would be laid out.

    Keys ``features.N.weight``/``bias`` with torchvision's shapes, plus (small,
    ignored) ``classifier.*`` entries as in a full torchvision file.
    """
    torch.manual_seed(seed)
    state = {f"features.{k}": v.clone() for k, v in Vgg19Features().features.state_dict().items()}
    for idx in (0, 3, 6):  # the real classifier is 25088x4096 etc.; only the key names matter here
        state[f"classifier.{idx}.weight"] = torch.zeros(2, 2)
        state[f"classifier.{idx}.bias"] = torch.zeros(2)
    torch.save(state, path)
    return state
