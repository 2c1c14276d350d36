"""Training checkpoints: one folder per save holding the whole state in ``state.pt`` (STYLE habit 6).

A checkpoint folder (``<store>/checkpoints/<model>/<run>/epoch_<NNNNNN>/``, written by
rank 0 through ``ray.train.report``) holds:

* ``state.pt``: a ``torch.save`` dict with keys

  - ``format``: :data:`CHECKPOINT_FORMAT`;
  - ``model``: the registry name of the family;
  - ``model_state``: :meth:`breastflow.models.GanModel.state_dict` (every network,
    optimiser and scheduler, the step/epoch counters, the family config);
  - ``epoch``: epochs completed; ``step``: optimisation steps done;
  - ``rng``: rank 0's ``torch``/``numpy``/``random`` generator states;
  - ``train_run``: the run's :class:`~breastflow.train.config.TrainRun` as JSON data;
  - ``dataset_version``: :func:`breastflow.data.version.dataset_version` of what it trained on;

* ``samples.png``: a grid pre | real post | synthetic | difference (see :mod:`.samples`).

Everything in ``state.pt`` is tensors and plain Python values, so it loads with
``torch.load(weights_only=True)``. Anchors: Ray ``doc/source/train/doc_code/checkpoints.py``
(rank 0 writes, every rank reports); nanoGPT ``train.py`` (the whole state in one file).
"""

from __future__ import annotations

import io
import os
import random
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fsspec.core import url_to_fs

from breastflow.models.base import GanModel
from breastflow.store.fs import is_remote, storage_options_from_env

CHECKPOINT_FORMAT = 1
STATE_FILE = "state.pt"
SAMPLES_FILE = "samples.png"
_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, not a breastflow checkpoint, or of an unknown format."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint of another model family or another dataset version than expected."""


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about itself (everything in ``state.pt`` except the model state).

    Attributes:
        uri: the ``state.pt`` it was read from (local path or ``s3://`` URL).
        model: registry name of the family.
        epoch: epochs completed when it was saved.
        step: optimisation steps done.
        dataset_version: version of the data it was trained on.
        train_run: the run settings (:class:`~breastflow.train.config.TrainRun` as JSON data).
        config: the family config (JSON data) the model was built with.
        rng: rank 0's generator states at the save.
    """

    uri: str
    model: str
    epoch: int
    step: int
    dataset_version: str
    train_run: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict, repr=False)


def checkpoint_dir_name(epoch: int) -> str:
    """Folder name of the checkpoint saved after ``epoch`` completed epochs (sorts by epoch)."""
    return f"epoch_{int(epoch):06d}"


def epoch_of_dir(name: str) -> int | None:
    """The epoch a checkpoint folder name stands for, or None for any other name."""
    match = _EPOCH_DIR.match(name.rstrip("/").rsplit("/", 1)[-1])
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------- RNG states


def capture_rng() -> dict[str, Any]:
    """This process's ``torch`` (CPU and, if present, CUDA), ``numpy`` and ``random`` states (weights-only loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured (CUDA states only where CUDA is present)."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------- write


def checkpoint_state(model: GanModel, dataset_version: str, train_run: Mapping[str, Any],
                     rng: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``state.pt`` dict of ``model`` now (see the module docstring for the keys).

    Args:
        model: the model (networks may be DDP/compile-wrapped; the state is unwrapped).
        dataset_version: version of the data trained on.
        train_run: the run settings as JSON data.
        rng: generator states (default: this process's, :func:`capture_rng`).
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "model": model.name,
        "model_state": model.state_dict(),
        "epoch": int(model.epoch),
        "step": int(model.step),
        "rng": dict(capture_rng() if rng is None else rng),
        "train_run": dict(train_run),
        "dataset_version": str(dataset_version),
    }


def save_checkpoint(folder: str | os.PathLike[str], model: GanModel, dataset_version: str,
                    train_run: Mapping[str, Any], rng: Mapping[str, Any] | None = None) -> Path:
    """Write ``state.pt`` into a local ``folder`` (created), atomically; returns the file.

    The engine writes into a temporary folder and hands it to ``ray.train.report``,
    which uploads it to the store; this function never talks to remote storage.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    target = out / STATE_FILE
    with tempfile.NamedTemporaryFile(dir=out, prefix=".state-", suffix=".pt", delete=False) as handle:
        torch.save(checkpoint_state(model, dataset_version, train_run, rng), handle)
    os.replace(handle.name, target)
    return target


# --------------------------------------------------------------------------------------- read


def state_uri(uri_or_path: str | os.PathLike[str]) -> str:
    """The ``state.pt`` URL/path of a checkpoint given as its folder or its file."""
    text = str(uri_or_path).rstrip("/")
    return text if text.endswith("/" + STATE_FILE) or text == STATE_FILE else f"{text}/{STATE_FILE}"


def read_checkpoint_state(uri_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw ``state.pt`` dict of a checkpoint (local folder/file or ``s3://`` URL; credentials from the environment).

    Raises:
        CheckpointError: nothing there, or not a breastflow checkpoint of a known format.
    """
    uri = state_uri(uri_or_path)
    fs, path = url_to_fs(uri, **storage_options_from_env(uri)) if is_remote(uri) else url_to_fs(uri)
    try:
        with fs.open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as err:
        raise CheckpointError(f"no checkpoint at {uri} (expected a folder holding {STATE_FILE}; "
                              "list a run's checkpoints with breastflow.train.checkpoint.list_checkpoints)") from err
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{uri} is not a breastflow checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or "model_state" not in state or "model" not in state:
        raise CheckpointError(f"{uri} is not a breastflow checkpoint (keys 'model' and 'model_state' are missing)")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{uri} has checkpoint format {state.get('format')!r}; this breastflow reads "
                              f"format {CHECKPOINT_FORMAT}")
    return state


def meta_of(state: Mapping[str, Any], uri: str) -> CheckpointMeta:
    """The :class:`CheckpointMeta` of a raw checkpoint dict."""
    return CheckpointMeta(uri=uri, model=str(state["model"]), epoch=int(state["epoch"]), step=int(state["step"]),
                          dataset_version=str(state.get("dataset_version", "")),
                          train_run=dict(state.get("train_run", {})),
                          config=dict(state["model_state"].get("config", {})), rng=dict(state.get("rng", {})))


def check_checkpoint(meta: CheckpointMeta, expect_model: str | None = None,
                     expect_dataset_version: str | None = None) -> None:
    """Raise unless the checkpoint is of ``expect_model`` and ``expect_dataset_version`` (None: any).

    Raises:
        CheckpointMismatchError: naming the checkpoint, what it holds and what was expected.
    """
    if expect_model is not None and meta.model.lower() != expect_model.lower():
        raise CheckpointMismatchError(f"checkpoint {meta.uri} holds model {meta.model!r}, not {expect_model!r}; "
                                      f"choose a checkpoint of {expect_model!r} (checkpoints/{expect_model}/<run>/)")
    if expect_dataset_version is not None and meta.dataset_version != expect_dataset_version:
        raise CheckpointMismatchError(
            f"checkpoint {meta.uri} was trained on dataset version {meta.dataset_version or '(none)'}, but the data "
            f"selected now has version {expect_dataset_version}; the store's series or the dataset spec changed since "
            "(re-train, or select the same data)")


def load_checkpoint(uri_or_path: str | os.PathLike[str], expect_model: str | None = None,
                    expect_dataset_version: str | None = None, config_overrides: Mapping[str, Any] | None = None,
                    device: str | torch.device = "cpu") -> tuple[GanModel, CheckpointMeta]:
    """Rebuild the model a checkpoint holds, with its whole state (networks, optimisers, schedulers, counters).

    Args:
        uri_or_path: a checkpoint folder or its ``state.pt``, local or ``s3://``.
        expect_model: registry name the checkpoint must be of (None: any).
        expect_dataset_version: dataset version it must have been trained on (None: any).
        config_overrides: machine-local config fields to replace (e.g. ``{"vgg_weights": path}``).
        device: where to put the model.

    Returns:
        ``(model, meta)``; the model is in eval mode.

    Raises:
        CheckpointError: nothing readable there.
        CheckpointMismatchError: another model family or another dataset version.
        breastflow.models.ModelStateError: the state does not fit the family's current code.
    """
    from breastflow.models import load_model

    uri = state_uri(uri_or_path)
    state = read_checkpoint_state(uri)
    meta = meta_of(state, uri)
    check_checkpoint(meta, expect_model, expect_dataset_version)
    model = load_model(state["model_state"], config_overrides)
    model.to(device)
    model.eval()
    return model, meta


def list_checkpoints(run_uri: str) -> list[str]:
    """The checkpoint folders of one run (``.../checkpoints/<model>/<run>``), oldest epoch first.

    Only complete checkpoints (folders ``epoch_<N>`` holding ``state.pt``) are listed;
    a missing run folder gives ``[]``. Local runs give absolute paths, remote ones URLs.
    """
    run_uri = str(run_uri).rstrip("/")
    remote = is_remote(run_uri)
    fs, root = url_to_fs(run_uri, **storage_options_from_env(run_uri)) if remote else url_to_fs(run_uri)
    if remote:
        fs.invalidate_cache()
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        return []
    found: list[tuple[int, str]] = []
    for entry in entries:
        name = str(entry).rstrip("/").rsplit("/", 1)[-1]
        epoch = epoch_of_dir(name)
        if epoch is not None and fs.exists(f"{str(entry).rstrip('/')}/{STATE_FILE}"):
            found.append((epoch, f"{run_uri}/{name}"))
    return [uri for _, uri in sorted(found)]
