"""Files that claim the same SOP instance: keep one identical copy, never pick between different ones.

An export copied into two folders holds every SOP instance twice; those copies
carry the same pixels and are kept once, so they never become duplicate
slices. Two files with the same SOPInstanceUID but different pixel data are a
conflict no header can settle (a re-reconstruction exported under the old UID,
a file edited by hand ...): every copy is rejected as
``conflicting-duplicate`` and its series, now missing that instance, is not
committed (see :mod:`breastflow.ingest.incomplete`).

Pixel data is compared only for the rare instance UIDs found more than once:
first the raw Pixel Data bytes, then, when they differ (e.g. one copy
transcoded to JPEG-LS), the decoded pixel values.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pydicom

from breastflow.dicom.discover import open_binary
from breastflow.dicom.errors import ConflictingDuplicate, IngestProblem
from breastflow.dicom.header import InstanceHeader

#: Copies named in one message (the rest are counted).
MAX_NAMED = 5


def _digests(path: str, storage_options: dict | None, decode: bool) -> str:
    """SHA-256 of a file's raw Pixel Data value, or of its decoded pixels (with shape and dtype)."""
    with open_binary(path, storage_options) as handle:
        ds = pydicom.dcmread(handle)
        if not decode:
            return hashlib.sha256(ds.PixelData).hexdigest()
        pixels = np.ascontiguousarray(ds.pixel_array)
    digest = hashlib.sha256(f"{pixels.shape}{pixels.dtype.str}".encode())
    digest.update(pixels.tobytes())
    return digest.hexdigest()


def same_pixels(paths: list[str], storage_options: dict | None = None) -> tuple[bool, str]:
    """Whether all files hold the same pixel data, and why not.

    Args:
        paths: files claiming one SOP instance.
        storage_options: fsspec options for remote files.

    Returns:
        ``(True, "")`` for identical copies, else ``(False, explanation)``.
    """
    try:
        if len({_digests(p, storage_options, decode=False) for p in paths}) == 1:
            return True, ""
        if len({_digests(p, storage_options, decode=True) for p in paths}) == 1:
            return True, ""
    except Exception as exc:  # noqa: BLE001 - a copy that cannot be read cannot be shown identical
        return False, f"the copies could not be compared ({type(exc).__name__}: {str(exc)[:200]})"
    return False, "their pixel data differs"


def resolve_duplicates(headers: Iterable[InstanceHeader], storage_options: dict | None = None
                       ) -> tuple[list[InstanceHeader], list[IngestProblem]]:
    """Keep one copy of each duplicated SOP instance, or reject all copies when they differ.

    Instances are matched like :func:`breastflow.dicom.series.group_series`
    does: same Study, Series and SOP Instance UID. Only those found in more
    than one file are read.

    Args:
        headers: probed headers (any order).
        storage_options: fsspec options for remote files.

    Returns:
        (headers to group: every unique instance, the first path in sorted order
        of identical copies; one ``conflicting-duplicate`` problem per file of
        each conflicting instance, naming the other copies and carrying the
        memory-only study/series UIDs).
    """
    ordered = sorted(headers, key=lambda h: h.path)
    copies: dict[tuple[str, str, str], list[InstanceHeader]] = defaultdict(list)
    for header in ordered:
        if header.sop_instance_uid:
            copies[(header.study_uid, header.series_uid, header.sop_instance_uid)].append(header)
    rejected: set[str] = set()
    problems: list[IngestProblem] = []
    for group in copies.values():
        if len(group) < 2:
            continue
        paths = [h.path for h in group]
        same, why = same_pixels(paths, storage_options)
        if same:
            rejected.update(paths[1:])  # identical copies: the first path stays
            continue
        rejected.update(paths)
        for header in group:
            others = [p for p in paths if p != header.path]
            named = ", ".join(others[:MAX_NAMED]) + (f" and {len(others) - MAX_NAMED} more"
                                                     if len(others) > MAX_NAMED else "")
            error = ConflictingDuplicate(
                f"same SOP instance as {named}, but {why}; no copy is chosen, so the series is not ingested "
                "(remove the wrong copy or re-export the series once)", header.path)
            error.study_uid, error.series_uid, error.header = header.study_uid, header.series_uid, header
            problems.append(error.to_problem())
    return [h for h in ordered if h.path not in rejected], problems
