"""Helpers of the selection tests: a tiny phantom store with a val split and checkpoints of known quality."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

from data_store_builder import PhantomStudy, build_store, patients

from breastflow.store.splits import Split

#: the smallest pix2pixhd (tests/models' TINY), perceptual off, pixel L1 on: learns in a few CPU seconds
TINY = {"ngf": 8, "ndf": 8, "n_downsample_global": 2, "n_blocks_global": 1, "perceptual": "off", "lambda_l1": 100.0,
        "lr": 0.002, "epochs": 100, "decay_epochs": 0}
SHAPE = (6, 24, 24)
BOX = (1, 4, 7, 14, 8, 15)
SELECTION = "series=post_1&split=val&slices=lesion&scale=per-case"


def tiny_studies() -> list[PhantomStudy]:
    """Three train studies and two val studies of 6 slices (24x24, pre + post_1), all annotated."""
    train, val = patients(Split.TRAIN, 3), patients(Split.VAL, 2)
    studies = [PhantomStudy(f"tr-{k}", p, shape=SHAPE, phases=("pre", "post_1"), box=BOX, seed=k)
               for k, p in enumerate(train)]
    return studies + [PhantomStudy(f"va-{k}", p, shape=SHAPE, phases=("pre", "post_1"), box=BOX, seed=10 + k)
                      for k, p in enumerate(val)]


def build_select_store(url: str) -> str:
    """Write the tiny store at ``url`` (local path or ``s3://``); returns ``url``."""
    build_store(url, tiny_studies())
    return url


def selection_of(store: str) -> str:
    """The default selection string of ``breastflow select`` on ``store``."""
    base = store if store.startswith("s3://") else f"store://{store}"
    return f"{base}?{SELECTION}"


def train_checkpoints(store: str, out: Path, epochs: tuple[int, ...], run: str = "r1", seed: int = 0,
                      version: str | None = None) -> list[Path]:
    """Train a tiny pix2pixhd in-process on the train split and save it after each of ``epochs``.

    Returns the checkpoint folders ``out/epoch_<N>`` (``epochs`` may start with 0: untrained).
    ``version`` overrides the dataset version written (a checkpoint "of another dataset").
    """
    import numpy as np
    import torch

    from breastflow.data.datasets.paired import PairedPhasesDataset, PairedPhasesSpec
    from breastflow.models import build_model
    from breastflow.train.checkpoint import checkpoint_dir_name, save_checkpoint
    from breastflow.train.config import TrainRun

    torch.manual_seed(seed)
    np.random.seed(seed)
    spec = PairedPhasesSpec(targets=("post_1",))
    dataset = PairedPhasesDataset(store, spec)
    model = build_model("pix2pixhd", TINY)
    model.train()
    train_run = TrainRun(model="pix2pixhd", model_options=TINY, dataset_spec=spec.model_dump(mode="json"), store=store,
                         run=run).model_dump(mode="json")
    folders = []
    for target in sorted(epochs):
        while model.epoch < target:
            dataset.set_epoch(model.epoch)
            loader = torch.utils.data.DataLoader(dataset, batch_size=6, shuffle=True, num_workers=0)
            for batch in loader:
                model.train_step(batch)
            model.end_epoch()
        folder = out / checkpoint_dir_name(target)
        save_checkpoint(folder, model, version or dataset.version, train_run)
        folders.append(folder)
    model.eval()
    return folders


def corrupt_checkpoint(folder: Path) -> Path:
    """Overwrite the middle of ``state.pt`` with garbage (unreadable by ``torch.load``); returns the folder."""
    state = folder / "state.pt"
    data = bytearray(state.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4096] = b"\x00garbage" * 512
    state.write_bytes(bytes(data[: len(data) - 100]))
    return folder
