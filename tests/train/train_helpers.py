"""Helpers of the training tests: a tiny phantom store written with tests/data's builder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

from data_store_builder import PhantomStudy, build_store, patients

from breastflow.store.splits import Split

#: the smallest pix2pixhd with every part (tests/models' TINY), perceptual off: fast at 32x32 on one core
TINY_PIX2PIXHD = {"ngf": 8, "ndf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "perceptual": "off"}
SLICES = 4


def tiny_studies() -> list[PhantomStudy]:
    """Three train studies of 4 slices (24x24, post_1 only) plus one test study."""
    train = patients(Split.TRAIN, 3)
    test = patients(Split.TEST, 1)
    shape = (SLICES, 24, 24)
    box = (1, 2, 8, 13, 9, 14)
    studies = [PhantomStudy(f"stu-{k}", p, shape=shape, phases=("pre", "post_1"), box=box, seed=k)
               for k, p in enumerate(train)]
    return [*studies, PhantomStudy("stu-t", test[0], shape=shape, phases=("pre", "post_1"), box=box, seed=9)]


def build_tiny_store(url: str) -> str:
    build_store(url, tiny_studies())
    return url
