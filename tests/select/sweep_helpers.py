"""Helpers of the sweep tests: a tiny store with train and val studies, and a tiny pix2pixhd base config."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

from data_store_builder import PhantomStudy, build_store, patients

from breastflow.store.splits import Split

#: the smallest pix2pixhd with every part, perceptual off (tests/train's TINY_PIX2PIXHD)
TINY = {"ngf": 8, "ndf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "perceptual": "off"}


def build_sweep_store(url: str, slices: int = 4, val: bool = True) -> str:
    """Two train studies and (``val``) one val study of ``slices`` 24x24 slices (pre, post_1)."""
    box = (1, 2, 8, 13, 9, 14)
    shape = (slices, 24, 24)
    studies = [PhantomStudy(f"stu-{k}", p, shape=shape, phases=("pre", "post_1"), box=box, seed=k)
               for k, p in enumerate(patients(Split.TRAIN, 2))]
    if val:
        studies.append(PhantomStudy("val-0", patients(Split.VAL, 1)[0], shape=shape, phases=("pre", "post_1"),
                                    box=box, seed=7))
    build_store(url, studies)
    return url


def base_overrides(epochs: int) -> list[str]:
    """``--set`` items of the tiny base config: ``epochs`` epochs, no decay, a checkpoint every epoch."""
    return [*(f"model.{k}={v}" for k, v in TINY.items()), f"epochs={epochs}", "decay_epochs=0",
            "checkpoint_every=1"]
