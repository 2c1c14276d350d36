"""What selection stores: per-checkpoint evaluations (reused on re-runs) and ``selected.json``.

* ``eval/checkpoints/<model>/<run>/<epoch_dir>/<config_key>.json``
  (:func:`breastflow.store.layout.checkpoint_eval_file`): one checkpoint's evaluation under one
  metric config, keyed by :func:`config_key` (sha256 of the evaluation settings, the real
  selection, its dataset version and the dataset version the checkpoints must have been
  trained on). A re-run with the same key reads it instead of evaluating again.
* ``checkpoints/<model>/<run>/selected.json`` (:func:`breastflow.store.layout.selected_file`):
  the :class:`SelectionResult`, read back with :func:`read_selection`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from breastflow.store import layout
from breastflow.store.fs import StoreLocation, atomic_write_bytes, read_bytes


class SelectError(ValueError):
    """Selection cannot run or found nothing to choose from; the message says what and how to fix it."""


class SelectionResult(BaseModel):
    """The chosen checkpoint of a run and the table it was chosen from (``selected.json``).

    Attributes:
        model, run: the family and the run; run_uri: ``<store>/checkpoints/<model>/<run>``.
        store: the store URL.
        selected: URI of the chosen checkpoint folder (equals that row's ``checkpoint``).
        criterion: :data:`breastflow.select.criteria.CRITERIA` name used.
        metrics: the metrics the criterion ranked by (spelled as :mod:`breastflow.metrics.names`).
        extra_metrics: computed as extra columns, not ranked by.
        selection: the real selection string the checkpoints were compared with.
        dataset_version: dataset version of that real selection.
        train_dataset_version: the version the checkpoints had to be trained on (``None``: not checked).
        metric_config: the evaluation settings (:class:`~breastflow.evaluate.config.EvaluationConfig`
            as JSON) and the config key of the stored evaluations.
        table: one row per evaluated checkpoint, oldest epoch first: ``checkpoint``, ``epoch``,
            ``synthetic`` (the set written), ``<metric>`` raw values (every metric computed),
            ``same`` (SAMe of the ranked metrics), ``score`` (the criterion's), ``scaled``
            (ranked metric -> scaled value, 0 best), ``reused`` (read from a stored evaluation),
            ``cache_hits``/``cache_misses`` (real-feature cache, evaluated trials only), ``seconds``.
        failed: ``{"checkpoint", "error"}`` of every checkpoint that could not be evaluated.
        notes: decisions made for the user (metrics left out, clipping, constants ...).
        uri: where this record is stored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str
    run: str
    run_uri: str
    store: str
    selected: str
    criterion: str
    metrics: list[str]
    extra_metrics: list[str] = Field(default_factory=list)
    selection: str
    dataset_version: str
    train_dataset_version: str | None = None
    metric_config: dict[str, Any] = Field(default_factory=dict)
    table: list[dict[str, Any]] = Field(default_factory=list)
    failed: list[dict[str, str]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    uri: str = ""

    def selected_row(self) -> dict[str, Any]:
        """The table row of the chosen checkpoint."""
        return next(row for row in self.table if row["checkpoint"] == self.selected)


def config_key(evaluation: dict[str, Any], selection: str, dataset_version: str, train_dataset_version: str | None,
               roi: bool) -> str:
    """16-hex key of everything that determines a checkpoint's evaluation (besides the checkpoint).

    ``device`` and ``batch_size`` of the evaluation settings do not change values and are left out.
    """
    settings = {k: v for k, v in evaluation.items() if k not in ("device", "batch_size")}
    text = json.dumps({"evaluation": settings, "selection": selection, "dataset_version": dataset_version,
                       "train_dataset_version": train_dataset_version, "roi": bool(roi)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def eval_file(model: str, run: str, checkpoint_uri: str, key: str) -> str:
    """Store path of ``checkpoint_uri``'s evaluation under ``key``."""
    return layout.checkpoint_eval_file(model, run, checkpoint_uri.rstrip("/").rsplit("/", 1)[-1], key)


def read_stored_eval(loc: StoreLocation, relpath: str) -> dict[str, Any] | None:
    """A stored evaluation record, or ``None`` when there is none (or it is unreadable)."""
    try:
        return json.loads(read_bytes(loc, relpath))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_stored_eval(loc: StoreLocation, relpath: str, record: dict[str, Any]) -> None:
    """Store one checkpoint's evaluation record (atomic)."""
    atomic_write_bytes(loc, relpath, json.dumps(record, indent=2, sort_keys=True, default=float).encode())


def write_selection(loc: StoreLocation, result: SelectionResult) -> SelectionResult:
    """Write ``selected.json`` beside the run's checkpoints; returns the result with its ``uri``."""
    relpath = layout.selected_file(result.model, result.run)
    stored = result.model_copy(update={"uri": loc.join(relpath)})
    atomic_write_bytes(loc, relpath, stored.model_dump_json(indent=2).encode())
    return stored


def read_selection(store: str, model: str, run: str) -> SelectionResult:
    """The selection recorded for ``run`` of ``model`` in ``store``.

    Raises:
        SelectError: no ``selected.json`` (naming where it was looked for), or not a selection record.
    """
    loc = StoreLocation.from_url(store)
    relpath = layout.selected_file(model, run)
    try:
        data = read_bytes(loc, relpath)
    except FileNotFoundError as err:
        raise SelectError(f"no selection recorded at {loc.join(relpath)}; run `breastflow select {run} {store} "
                          f"--model {model}` first") from err
    try:
        return SelectionResult.model_validate_json(data)
    except ValueError as err:
        raise SelectError(f"{loc.join(relpath)} is not a selection record: {err}") from err
