"""Helpers of the synthesis-report tests: a tiny store with train / val / test studies and a selected.json writer."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))  # generate_helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))  # data_store_builder

from data_store_builder import PhantomStudy, patients
from generate_helpers import build_tiny_store, write_checkpoint

from breastflow.store import layout
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split

__all__ = ["METRICS", "build_tiny_store", "report_studies", "selection_text", "write_checkpoint", "write_selected"]

METRICS = ["mse", "mae", "ssim"]
BOX = (2, 3, 8, 13, 9, 14)


def report_studies() -> list[PhantomStudy]:
    """2 train, 2 val, 3 test studies of 6 slices (24x24, pre + post_1..post_3); one test study int16 with a
    rescale, one (``te-2``) without lesion annotations."""
    train, val, test = patients(Split.TRAIN, 2), patients(Split.VAL, 2), patients(Split.TEST, 3)
    out = [PhantomStudy(f"tr-{i}", p, shape=(6, 24, 24), box=BOX, seed=10 + i) for i, p in enumerate(train)]
    out += [PhantomStudy(f"va-{i}", p, shape=(6, 24, 24), box=BOX, seed=20 + i) for i, p in enumerate(val)]
    out += [PhantomStudy(f"te-{i}", p, shape=(6, 24, 24), box=BOX, seed=30 + i, dtype="int16" if i else "uint16",
                         slope=2.0 if i else 1.0, intercept=-50.0 if i else 0.0) for i, p in enumerate(test[:2])]
    out.append(PhantomStudy("te-2", test[2], shape=(6, 24, 24), box=None, seed=32))  # not annotated
    return out


def selection_text(store: str, split: str = "val") -> str:
    """The selection string ``breastflow select`` records (local path or ``s3://`` store)."""
    base = store if "://" in store else f"store://{store}"
    return f"{base}?series=post_1&split={split}&slices=lesion&scale=per-case"


def write_selected(store: str, model: str, run: str, data: dict) -> None:
    """Write ``checkpoints/<model>/<run>/selected.json`` through ``breastflow select``'s own record type."""
    from breastflow.select.results import SelectionResult, write_selection

    loc = StoreLocation.from_url(store)
    defaults = {"model": model, "run": run, "run_uri": loc.join(layout.checkpoint_dir(model, run)), "store": loc.url,
                "criterion": "same", "dataset_version": "dsv1:test"}
    write_selection(loc, SelectionResult.model_validate({**defaults, **data}))
