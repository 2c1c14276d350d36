"""A synthetic set against the baselines it must beat, on held-out studies, where enhancement must be learnt.

Candidates for the real post-contrast phase of a held-out study:

* ``model``: the synthetic series of a synthetic set (``breastflow generate``);
* ``identity``: the pre-contrast series itself (no enhancement at all);
* ``linear``: ``a * pre + b`` with ``(a, b)`` fitted by least squares over every voxel
  of the *training* studies (:func:`breastflow.demo.fit_linear_baseline`: a global
  intensity map, which cannot place enhancement where the lesion is).

Everything is compared on the per-case scale of :mod:`breastflow.demo` (each
study divided by its pre-contrast 99th percentile, so enhancement between
phases is kept; never per-phase min-max). Figures (:data:`COLUMNS`):

* ``mae_lesion``: mean absolute error over the voxels of the study's lesion
  boxes (inclusive, on the pre-contrast grid), pooled over studies - the region
  where a pre -> post mapping must *learn* enhancement;
* ``mae``, ``psnr``, ``ssim``: whole-volume paired metrics per slice
  (:func:`breastflow.metrics.paired.paired_metrics`, data range = the real
  volume's range), averaged over slices, as the demo reports its baselines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from breastflow.generate.synthetic import synthetic_location
from breastflow.store.fs import StoreLocation

PRE = "pre"
CANDIDATES = ("model", "identity", "linear")
COLUMNS = ("mae_lesion", "mae", "psnr", "ssim", "lesion_voxels", "studies")


def read_physical(loc: StoreLocation, study: str, series: str) -> np.ndarray:
    """A whole stored series in physical values: ``raw * rescale_slope + rescale_intercept``.

    The one reading rule of the comparisons (this module and :mod:`breastflow.demo`):
    :class:`breastflow.data.intensity.Rescale` from the series' ``attrs.breastflow``.

    Returns:
        ``(Z, Y, X)`` float64.
    """
    from breastflow.data.intensity import Rescale
    from breastflow.store.zarr_io import open_series_array, series_attrs

    raw = np.asarray(open_series_array(loc, study, series)[:])
    return Rescale.from_attrs(series_attrs(loc, study, series).get("breastflow", {})).apply(raw)


def lesion_region(loc: StoreLocation, study: str, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean ``(Z, Y, X)`` union of the study's committed lesion boxes (all False when none)."""
    from breastflow.store.annotation_commit import read_annotation_commit

    region = np.zeros(shape, dtype=bool)
    record = read_annotation_commit(loc, study)
    for box in record.boxes if record is not None else ():
        if box.start_slice is None:
            continue
        region[box.start_slice:box.end_slice + 1, box.start_row:box.end_row + 1,
               box.start_column:box.end_column + 1] = True
    return region


def compare_with_baselines(store: str, name: str, held_out: Sequence[str], train: Sequence[str],
                           target: str = "post_1") -> pd.DataFrame:
    """Figures of the synthetic set ``name`` and the two baselines on the ``held_out`` studies.

    Args:
        store: the store; name: the synthetic set holding ``target`` for every held-out study.
        held_out: studies to evaluate (val/test); train: studies the linear baseline is fitted on.
        target: the post-contrast series compared.

    Returns:
        A table indexed by candidate (:data:`CANDIDATES`) with :data:`COLUMNS`.

    Raises:
        FileNotFoundError: a held-out study lacks its synthetic series.
        ValueError: no held-out or no training study.
    """
    from breastflow.demo import fit_linear_baseline, per_case_scale
    from breastflow.metrics.paired import paired_metrics

    if not held_out or not train:
        raise ValueError(f"need held-out and training studies, got {len(held_out)} and {len(train)}")
    loc = StoreLocation.from_url(store)
    sloc = synthetic_location(loc, name)
    pairs = []
    for study in train:
        pre, post = read_physical(loc, study, PRE), read_physical(loc, study, target)
        scale = per_case_scale(pre)
        pairs.append((pre / scale, post / scale))
    a, b = fit_linear_baseline(pairs)
    errors: dict[str, list[np.ndarray]] = {c: [] for c in CANDIDATES}
    slices: dict[str, dict[str, list[np.ndarray]]] = {c: {"mae": [], "psnr": [], "ssim": []} for c in CANDIDATES}
    for study in held_out:
        pre = read_physical(loc, study, PRE)
        scale = per_case_scale(pre)
        pre, real = pre / scale, read_physical(loc, study, target) / scale
        fake = read_physical(sloc, study, target) / scale
        region = lesion_region(loc, study, real.shape)
        data_range = float(real.max() - real.min()) or 1.0
        for candidate, guess in (("model", fake), ("identity", pre), ("linear", a * pre + b)):
            errors[candidate].append(np.abs(guess - real)[region])
            result = paired_metrics(guess, real, data_range=data_range, metrics=("mae", "psnr", "ssim"))
            for metric in ("mae", "psnr", "ssim"):
                slices[candidate][metric].append(np.asarray(result.per_case[metric], dtype=np.float64))
    rows = {}
    for candidate in CANDIDATES:
        lesion = np.concatenate(errors[candidate])
        rows[candidate] = {"mae_lesion": float(lesion.mean()) if lesion.size else float("nan"),
                           **{m: float(np.mean(np.concatenate(v))) for m, v in slices[candidate].items()},
                           "lesion_voxels": int(lesion.size), "studies": len(held_out)}
    table = pd.DataFrame.from_dict(rows, orient="index")[list(COLUMNS)]
    table.index.name = "candidate"
    return table
