"""Synthetic sets in the store: where they live, how a series is written and committed, how readers find them.

A synthetic set ``<name>`` is a nested store of the store's own layout under
``synthetic/<name>/`` (:func:`breastflow.store.layout.synthetic_dir`)::

    synthetic/<name>/studies/<study>/<series>/   OME-Zarr image group, the real series' geometry, dtype, rescale
    synthetic/<name>/commits/<study>/<series>.json   commit marker (a SeriesRecord), written last

so every store function (``write_series``, ``stored_mismatch``, ``read_commits``,
:class:`~breastflow.data.slices.SliceReader`) works on it through
:func:`synthetic_location`. A synthetic series is written, read back voxel for
voxel and committed exactly like an ingested one (:mod:`breastflow.ingest.series`).
Study pseudonyms, patients and splits are the real store's: the set has no
catalog of its own; :func:`synthetic_catalog` projects the real catalog onto
the committed synthetic series. No torch here: selections import this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import pandas as pd

from breastflow import __version__
from breastflow.store import layout
from breastflow.store.commit import SeriesRecord, read_commits, write_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import (
    Geometry,
    WrittenSeries,
    stored_mismatch,
    write_series,
)

#: Attribute keys that write_series sets itself from the written volume.
_WRITTEN_KEYS = ("content_hash", "shape", "dtype", "spacing_mm", "origin_mm", "direction")


class SyntheticSetError(ValueError):
    """A synthetic set that does not exist or cannot be written; the message names it and the store."""


class SyntheticVerificationError(OSError):
    """A synthetic series read back differs from what was written (storage problem; retry)."""


def synthetic_location(loc: StoreLocation, name: str) -> StoreLocation:
    """The nested store of synthetic set ``name`` (same storage options as ``loc``).

    Raises:
        ValueError: ``name`` is not a valid store name.
    """
    return StoreLocation(url=loc.join(layout.synthetic_dir(name)), storage_options=dict(loc.storage_options))


def list_synthetic_sets(loc: StoreLocation) -> list[str]:
    """Names of the synthetic sets under ``synthetic/`` (any with a folder; committed or not)."""
    fs = loc.filesystem()
    try:
        entries = fs.ls(loc.fs_path(layout.SYNTHETIC), detail=False)
    except FileNotFoundError:
        return []
    return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)


def read_synthetic_commits(loc: StoreLocation, name: str) -> list[SeriesRecord]:
    """The committed series of synthetic set ``name``, sorted by (study, series).

    Raises:
        SyntheticSetError: nothing committed under ``synthetic/<name>/`` (names the sets that exist).
    """
    records = read_commits(synthetic_location(loc, name))
    if not records:
        present = list_synthetic_sets(loc)
        raise SyntheticSetError(
            f"store {loc.url} has no synthetic set {name!r} (sets present: {', '.join(present) or 'none'}); "
            f"write one with: breastflow generate CHECKPOINT {loc.url} --split test --out {name}")
    return records


def synthetic_catalog(loc: StoreLocation, name: str, catalog: pd.DataFrame) -> pd.DataFrame:
    """The real catalog's rows of the series synthetic set ``name`` holds, with the synthetic content hashes.

    Study-level columns (patient, split, vendor, annotations) stay the real study's,
    so selection filters mean the same on real and synthetic data.

    Args:
        loc: the real store; name: the synthetic set; catalog: the real store's catalog.

    Raises:
        SyntheticSetError: no such set, or a synthetic series whose real series is not in the catalog.
    """
    records = {(r.study, r.series): r for r in read_synthetic_commits(loc, name)}
    keys = list(zip(catalog.study, catalog.series, strict=True))
    keep = [k in records for k in keys]
    rows = catalog[keep].copy()
    missing = sorted(set(records) - {k for k, kept in zip(keys, keep, strict=True) if kept})
    if missing:
        study, series = missing[0]
        raise SyntheticSetError(f"synthetic set {name!r}: {study}/{series} has no real series in the catalog of "
                                f"{loc.url} ({len(missing)} such); was the real store rebuilt since generation?")
    rows["content_hash"] = [records[(s, r)].content_hash for s, r in zip(rows.study, rows.series, strict=True)]
    return rows


def source_fingerprint(checkpoint: str, epoch: int, step: int, real_source_hash: str) -> str:
    """Fingerprint of what a synthetic series was made from (checkpoint, its counters, the real input)."""
    text = f"{checkpoint}|{epoch}|{step}|{real_source_hash}"
    return "synthetic:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def write_synthetic_series(loc: StoreLocation, name: str, real: SeriesRecord, real_attrs: Mapping[str, Any],
                           volume: Any, provenance: Mapping[str, Any], fingerprint: str) -> WrittenSeries:
    """Write, verify and commit one synthetic series beside its real counterpart's description.

    The stored attributes are the real series' (``attrs.breastflow``: role, phase,
    vendor, rescale, whitelisted header values) with ``provenance`` replaced by the
    synthetic one; geometry (spacing, origin, direction) and dtype are the real series'.

    Args:
        loc: the real store; name: synthetic set name.
        real: the real series' commit record (study, series, dtype, shape ...).
        real_attrs: the real series' ``attrs["breastflow"]``.
        volume: ``(Z, Y, X)`` array in the real series' dtype and shape.
        provenance: PHI-free description (checkpoint, model, epoch, dataset version ...).
        fingerprint: :func:`source_fingerprint` of the inputs.

    Raises:
        SyntheticSetError: ``volume`` does not have the real series' shape or dtype.
        SyntheticVerificationError: the stored voxels differ from ``volume`` after writing.
    """
    where = f"synthetic set {name!r}, {real.study}/{real.series}"
    if tuple(volume.shape) != tuple(real.shape) or volume.dtype.name != real.dtype:
        raise SyntheticSetError(f"{where}: volume {tuple(volume.shape)} {volume.dtype} does not match the real series "
                                f"{tuple(real.shape)} {real.dtype}")
    sloc = synthetic_location(loc, name)
    geometry = Geometry(spacing_mm=tuple(float(v) for v in real_attrs["spacing_mm"]),  # type: ignore[arg-type]
                        origin_mm=tuple(float(v) for v in real_attrs["origin_mm"]),  # type: ignore[arg-type]
                        direction=tuple(float(v) for v in real_attrs["direction"]))
    attrs = {k: v for k, v in real_attrs.items() if k not in _WRITTEN_KEYS}
    attrs["provenance"] = {**dict(provenance), "real_content_hash": real.content_hash,
                           "breastflow_version": __version__}
    # uncommit first: a regenerated series must never be visible half-rewritten
    fs = sloc.filesystem()
    marker = sloc.fs_path(layout.commit_marker(real.study, real.series))
    if fs.exists(marker):
        fs.rm_file(marker)
    written = write_series(sloc, real.study, real.series, volume, geometry, attrs)
    problem = stored_mismatch(sloc, real.study, real.series, volume)
    if problem is not None:
        raise SyntheticVerificationError(f"{where}: stored voxels differ from the generated volume ({problem})")
    write_commit(sloc, real.model_copy(update={
        "content_hash": written.content_hash, "source_fingerprint": fingerprint, "breastflow_version": __version__,
        "transfer_syntax": None, "source_bytes": 0, "n_source_files": 0, "intensity_unit": None,
        "intensity_unit_rule": None}))
    return written
