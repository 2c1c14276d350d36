"""A segmentation fold's checkpoint in the store: ``state.pt`` (whole training state) and ``fold.json``.

Layout (:func:`breastflow.store.layout.segmentation_fold_dir`)::

    checkpoints/segmentation/<experiment>/<train_set>/fold_<k>/
      state.pt    torch.save of {"state": FoldState fields, "plan": ..., "config": ...}
      fold.json   {"epoch", "epochs", "losses", "complete", "val_dice", "train", "val", "plan", "config", "pid"}

``state.pt`` is written first and ``fold.json`` last (both atomically), so a
``fold.json`` always describes a ``state.pt`` at least as new. A fold is
*complete* when ``fold.json`` says so (trained to its epochs and validated);
a complete fold is reused, an incomplete one resumes at its epoch.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict

import torch

from breastflow.segmentation.plan import SegmentationPlan
from breastflow.segmentation.train import FoldState, FoldTrainConfig, build_network
from breastflow.store.fs import StoreLocation, atomic_write_bytes, exists, read_bytes

STATE_FILE = "state.pt"
FOLD_FILE = "fold.json"


class FoldCheckpointError(ValueError):
    """A stored fold does not belong to the job asking for it (other plan or other items)."""


def save_fold_state(loc: StoreLocation, folder: str, state: FoldState, plan: SegmentationPlan,
                    config: FoldTrainConfig, train: Sequence[str], val: Sequence[str],
                    val_dice: float | None = None) -> None:
    """Write ``state.pt`` then ``fold.json`` (complete when ``val_dice`` is given).

    Args:
        loc: the store; folder: the fold's folder (relative path).
        state: the training state; plan, config: what it was trained with.
        train, val: item identifiers of the fold; val_dice: validation Dice of a finished fold.
    """
    buffer = io.BytesIO()
    torch.save({"state": asdict(state), "plan": plan.model_dump(mode="json"),
                "config": config.model_dump(mode="json")}, buffer)
    atomic_write_bytes(loc, f"{folder}/{STATE_FILE}", buffer.getvalue())
    record = {"epoch": state.epoch, "epochs": config.epochs, "losses": state.losses,
              "complete": val_dice is not None, "val_dice": val_dice, "train": list(train), "val": list(val),
              "plan": plan.model_dump(mode="json"), "config": config.model_dump(mode="json"), "pid": os.getpid()}
    atomic_write_bytes(loc, f"{folder}/{FOLD_FILE}", json.dumps(record, indent=1).encode())


def read_fold_record(loc: StoreLocation, folder: str) -> dict | None:
    """The fold's ``fold.json``, or ``None`` when it has none yet."""
    if not exists(loc, f"{folder}/{FOLD_FILE}"):
        return None
    return json.loads(read_bytes(loc, f"{folder}/{FOLD_FILE}"))


def check_fold_record(record: dict, folder: str, plan: SegmentationPlan, train: Sequence[str],
                      val: Sequence[str]) -> None:
    """Check that a stored fold was trained with ``plan`` on the same items.

    Raises:
        FoldCheckpointError: naming the folder and what differs.
    """
    if SegmentationPlan.model_validate(record["plan"]) != plan:
        raise FoldCheckpointError(f"{folder} was trained with another plan ({record['plan']}); use another "
                                  "experiment name or delete the folder")
    if sorted(record["train"]) != sorted(train) or sorted(record["val"]) != sorted(val):
        raise FoldCheckpointError(f"{folder} was trained on other items ({len(record['train'])} train, "
                                  f"{len(record['val'])} val); use another experiment name or delete the folder")


def load_fold_state(loc: StoreLocation, folder: str) -> FoldState | None:
    """The fold's saved :class:`FoldState`, or ``None`` when it has no ``state.pt``."""
    if not exists(loc, f"{folder}/{STATE_FILE}"):
        return None
    saved = torch.load(io.BytesIO(read_bytes(loc, f"{folder}/{STATE_FILE}")), map_location="cpu",
                       weights_only=False)
    return FoldState(**saved["state"])


def load_fold_network(loc: StoreLocation, folder: str, plan: SegmentationPlan, device: str = "cpu"
                      ) -> torch.nn.Module:
    """The fold's trained DynUNet (eval mode) from its ``state.pt``.

    Raises:
        FileNotFoundError: the fold has no checkpoint.
    """
    state = load_fold_state(loc, folder)
    if state is None:
        raise FileNotFoundError(f"{loc.url}/{folder} has no {STATE_FILE}; train the fold first")
    network = build_network(plan)
    network.load_state_dict(state.network)
    return network.to(device).eval()
