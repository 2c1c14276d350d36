"""``dataset_version``: one content hash naming exactly the stored data a selection reads.

Every checkpoint and feature cache records it, so a run can tell whether it
saw the same data. It hashes the sorted, de-duplicated triples
``(study, series, content_hash)`` of the series read (content hashes from the
catalog, i.e. the commit markers); the order in which series are given does
not matter, and re-ingesting any of them with different voxels changes it.

A dataset that also reads a study's lesion annotations (boxes choose slices,
the mask fills ``MASK``) adds the pseudo-series :data:`ANNOTATIONS`, hashed
as the annotation record's boxes and mask hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import pandas as pd

from breastflow.store.annotation_commit import read_annotation_commit
from breastflow.store.catalog import read_catalog
from breastflow.store.fs import StoreLocation

#: Pseudo-series name of a study's committed annotations (boxes + lesion mask).
ANNOTATIONS = "annotations"
VERSION_PREFIX = "dsv1:"


def _annotation_hash(loc: StoreLocation, study: str) -> str:
    record = read_annotation_commit(loc, study)
    if record is None:
        raise KeyError(f"dataset_version: study {study} has no committed annotations")
    content = json.dumps({"boxes": [b.model_dump(mode="json") for b in record.boxes],
                          "mask_hash": record.mask_hash}, sort_keys=True)
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()


def dataset_version(loc: StoreLocation, series_keys: Iterable[tuple[str, str]],
                    catalog: pd.DataFrame | None = None) -> str:
    """Content version of the data read from ``series_keys``.

    Args:
        loc: the store.
        series_keys: ``(study, series)`` pairs (any order, repeats ignored);
            series :data:`ANNOTATIONS` names a study's annotations.
        catalog: the store's catalog if already read (else it is read here).

    Returns:
        ``"dsv1:<sha256 hex>"`` over the sorted ``(study, series, content_hash)`` lines.

    Raises:
        KeyError: a series (or annotation) is not committed in the store.
        ValueError: ``series_keys`` is empty.
    """
    keys = sorted({(str(s), str(r)) for s, r in series_keys})
    if not keys:
        raise ValueError("dataset_version needs at least one (study, series) key")
    frame = read_catalog(loc) if catalog is None else catalog
    hashes = dict(zip(zip(frame.study, frame.series), frame.content_hash, strict=True))
    digest = hashlib.sha256()
    for study, series in keys:
        if series == ANNOTATIONS:
            content = _annotation_hash(loc, study)
        else:
            content = hashes.get((study, series))
            if content is None:
                raise KeyError(f"dataset_version: series {study}/{series} is not committed in store {loc.url}")
        digest.update(f"{study}\t{series}\t{content}\n".encode())
    return VERSION_PREFIX + digest.hexdigest()
