"""Helpers of the generation tests: a tiny phantom store (tests/data's builder) and checkpoints of tiny models."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

import data_store_builder
from data_store_builder import PhantomStudy, build_store, patients

from breastflow.models import build_model
from breastflow.store.splits import Split
from breastflow.store.zarr_io import Geometry
from breastflow.train.checkpoint import save_checkpoint
from breastflow.train.config import TrainRun

#: the smallest pix2pixhd with every part (size multiple 4), perceptual off
TINY_PIX2PIXHD = {"ngf": 8, "ndf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "perceptual": "off",
                  "epochs": 1, "decay_epochs": 0}
#: a non-trivial placement (flipped X and Z axes, shifted origin, anisotropic voxels) that must be copied exactly
GEOMETRY = Geometry(spacing_mm=(2.5, 0.75, 0.8), origin_mm=(-12.5, 30.0, 7.25),
                    direction=(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
VERSION = "dsv1:" + "b" * 64


def tiny_studies() -> list[PhantomStudy]:
    """Two train studies and two test studies of 6 slices; one test study int16 with a rescale and an odd grid."""
    train, test = patients(Split.TRAIN, 2), patients(Split.TEST, 2)
    box = (2, 3, 8, 13, 9, 14)
    return [
        PhantomStudy("stu-a", train[0], shape=(6, 24, 24), box=box, seed=1),
        PhantomStudy("stu-b", train[1], shape=(6, 24, 24), box=box, seed=2),
        PhantomStudy("stu-c", test[0], shape=(6, 24, 24), box=box, seed=3),
        PhantomStudy("stu-d", test[1], shape=(5, 22, 26), dtype="int16", slope=2.0, intercept=-50.0, box=box, seed=4),
    ]


def build_tiny_store(url: str, studies: list[PhantomStudy] | None = None) -> str:
    """Write the tiny store with :data:`GEOMETRY` (the builder's module constant is swapped while writing)."""
    saved = data_store_builder.GEOMETRY
    data_store_builder.GEOMETRY = GEOMETRY
    try:
        build_store(url, tiny_studies() if studies is None else studies)
    finally:
        data_store_builder.GEOMETRY = saved
    return url


def train_run(store: str, model: str = "pix2pixhd", options: dict | None = None,
              targets: tuple[str, ...] = ("post_1",), image_size: int | None = None) -> dict:
    """The ``train_run`` JSON data the engine saves in a checkpoint."""
    spec = {"targets": list(targets), "image_size": image_size}
    run = TrainRun(model=model, model_options=dict(TINY_PIX2PIXHD if options is None else options),
                   dataset_spec=spec, store=store, run="r1")
    return run.model_dump(mode="json")


def write_checkpoint(folder: Path, store: str, targets: tuple[str, ...] = ("post_1",),
                     image_size: int | None = None, model: str = "pix2pixhd", options: dict | None = None) -> Path:
    """A randomly initialised tiny model saved with the engine's checkpoint layout; returns the folder."""
    options = dict(TINY_PIX2PIXHD if options is None else options)
    if model == "pix2pixhd":
        options["output_nc"] = len(targets)
    net = build_model(model, options)
    save_checkpoint(folder, net, VERSION, train_run(store, model, options, targets, image_size))
    return folder


def identity_model(output_nc: int = 1):
    """A tiny pix2pixhd whose generator returns its input (repeated per output channel)."""
    from torch import Tensor, nn

    model = build_model("pix2pixhd", {**TINY_PIX2PIXHD, "output_nc": output_nc})

    class Repeat(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return x.repeat(1, output_nc, 1, 1)

    model.networks["generator"] = Repeat()
    return model
