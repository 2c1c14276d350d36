"""``losses.csv`` of a run: one row of mean losses per epoch, kept beside the checkpoints (rank 0 writes).

Object stores cannot append, so the whole (small) file is rewritten after every
epoch, atomically. A resumed run first drops the rows of epochs after the
checkpoint it resumes from (they were trained again), so every epoch appears once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from breastflow.store.fs import StoreLocation, atomic_write_bytes
from breastflow.train.config import LOSSES_FILE

FIRST_COLUMNS = ("epoch", "step")


class LossLog:
    """The per-epoch loss table of one run.

    Args:
        store_url: the store.
        run_dir: the run's folder below the store root (``checkpoints/<model>/<run>``).
        keep_until: keep existing rows with ``epoch <= keep_until`` (the resumed epoch), drop later ones.
    """

    def __init__(self, store_url: str, run_dir: str, keep_until: int) -> None:
        self.loc = StoreLocation.from_url(store_url)
        self.relpath = f"{run_dir}/{LOSSES_FILE}"
        self.rows = [r for r in read_losses(self.loc.join(self.relpath), self.loc) if int(r["epoch"]) <= keep_until]

    def append(self, row: Mapping[str, float | int]) -> None:
        """Add one epoch's row (needs ``epoch``) and rewrite the file."""
        self.rows.append({k: row[k] for k in row})
        columns = list(FIRST_COLUMNS) + sorted({k for r in self.rows for k in r} - set(FIRST_COLUMNS))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.loc, self.relpath, text.getvalue().encode())


def read_losses(uri: str, loc: StoreLocation | None = None) -> list[dict[str, float]]:
    """The rows of a ``losses.csv`` (numbers as floats, ``epoch``/``step`` as ints); ``[]`` if there is none."""
    loc = loc or StoreLocation.from_url(uri.rsplit("/", 1)[0])
    fs = loc.filesystem()
    path = uri if not loc.remote else uri.split("://", 1)[1]
    try:
        with fs.open(path, "r") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    out = []
    for row in rows:
        parsed: dict[str, float] = {}
        for key, value in row.items():
            if value not in ("", None):
                parsed[key] = int(value) if key in FIRST_COLUMNS else float(value)
        out.append(parsed)
    return out
