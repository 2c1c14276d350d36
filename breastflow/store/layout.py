"""The store layout: the ONE place that says where everything lives in a store.

A store is a Zarr v3 hierarchy on a local path or an ``s3://`` prefix::

    <store>/
      zarr.json                                 root group; attrs["breastflow_store"] = format version
      studies/<study>/zarr.json                 study group; PHI-free study attrs, lesion boxes
      studies/<study>/<series>/zarr.json        OME-Zarr (NGFF 0.5) image group of one series
      studies/<study>/<series>/0/...            full-resolution array (Z, Y, X), native int dtype
      studies/<study>/masks/<mask>/...          OME-Zarr image group of a mask (uint8, same grid)
      commits/<study>/<series>.json             commit marker: the series is visible iff it exists
      annotations/<study>.json                  commit marker of the study's lesion boxes + mask
      catalog/catalog.parquet                   one row per committed series (see catalog.py)
      reports/ingest/<run_id>.json              PHI-free ingest reports and quarantine lists
      checkpoints/<model>/<run>/                a training run: epoch_<N>/state.pt, train_run.json, losses.csv
      checkpoints/<model>/<run>/selected.json   the checkpoint chosen by ``breastflow select`` and its table
      checkpoints/<model>/<run>/report/         the synthesis report of the selected checkpoint (HTML, Markdown, PNGs)
      synthetic/<name>/                         a synthetic set (``breastflow generate``): a nested store of
                                                the same layout, studies/<study>/<series> + commits/<study>/<series>.json
      eval/features/<sha256>.npy|.json          real-set features, keyed by content (FeatureCache)
      eval/checkpoints/<model>/<run>/<epoch_dir>/<config_key>.json
                                                one checkpoint's evaluation under one metric config (reused)
      sweeps/<model>/<sweep>.json               a hyper-parameter sweep's trials, best config and best run
      checkpoints/segmentation/<experiment>/<train_set>/fold_<k>/
                                                one segmentation fold: state.pt (resumable) and fold.json
      reports/utility/<experiment>/             the segmentation utility report (report.md, report.html, rows.json)

``<study>`` is the keyed study pseudonym, ``<series>`` a :class:`SeriesRole`
name such as ``pre``, ``post_2``, ``t2`` or ``mg_l_cc``.

Commit scheme. Object stores have no atomic rename, so a series is written in
place and *committed* by writing a small JSON marker last (one PUT, atomic on
S3; ``os.replace`` locally). Readers and the catalog only trust committed
series; an uncommitted array left by a crash is overwritten by the next run.
"""

from __future__ import annotations

import re

STORE_FORMAT_VERSION = 1
ROOT_ATTR = "breastflow_store"

STUDIES = "studies"
COMMITS = "commits"
CATALOG_DIR = "catalog"
CATALOG_FILE = f"{CATALOG_DIR}/catalog.parquet"
REPORTS = "reports/ingest"
MASKS = "masks"
ANNOTATIONS = "annotations"  # annotations/<study>.json: commit marker of a study's lesion boxes + mask
FULL_RESOLUTION = "0"  # NGFF dataset path of the full-resolution level

# Prefixes reserved for later stages; nothing else may write there.
CHECKPOINTS = "checkpoints"
SYNTHETIC = "synthetic"
EVAL = "eval"
SWEEPS = "sweeps"
RESERVED_PREFIXES = (STUDIES, COMMITS, ANNOTATIONS, CATALOG_DIR, "reports", CHECKPOINTS, SYNTHETIC, EVAL, SWEEPS)
#: FeatureCache root of real-set features (``eval/features``)
EVAL_FEATURES = f"{EVAL}/features"
SELECTED_FILE = "selected.json"
REPORT_DIR = "report"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a safe path component (lower-case, digits, ``_``, ``-``).

    Raises:
        ValueError: ``value`` could escape its prefix or is not a plain name.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid store name: use 1-64 characters of "
            "[a-z0-9_-], starting with a letter or digit"
        )
    return value


def study_group(study: str) -> str:
    """Path of a study's group."""
    return f"{STUDIES}/{check_name(study, 'study pseudonym')}"


def series_group(study: str, series: str) -> str:
    """Path of a series' OME-Zarr image group."""
    return f"{study_group(study)}/{check_name(series, 'series role')}"


def series_array(study: str, series: str) -> str:
    """Path of a series' full-resolution array ``(Z, Y, X)``."""
    return f"{series_group(study, series)}/{FULL_RESOLUTION}"


def mask_group(study: str, mask: str) -> str:
    """Path of a mask's OME-Zarr image group beside the study's series."""
    return f"{study_group(study)}/{MASKS}/{check_name(mask, 'mask name')}"


def commit_marker(study: str, series: str) -> str:
    """Path of a series' commit marker."""
    return f"{COMMITS}/{check_name(study, 'study pseudonym')}/{check_name(series, 'series role')}.json"


def annotation_marker(study: str) -> str:
    """Path of the commit marker of a study's annotations (lesion boxes and mask)."""
    return f"{ANNOTATIONS}/{check_name(study, 'study pseudonym')}.json"


def report_file(run_id: str) -> str:
    """Path of an ingest run's PHI-free report."""
    return f"{REPORTS}/{check_name(run_id, 'run id')}.json"


def checkpoint_dir(model: str, run: str) -> str:
    """Reserved: where a GAN model's checkpoints of one run live."""
    return f"{CHECKPOINTS}/{check_name(model, 'model')}/{check_name(run, 'run')}"


def synthetic_dir(run: str) -> str:
    """Where the synthetic set ``run`` lives: the root of a nested store with this same layout."""
    return f"{SYNTHETIC}/{check_name(run, 'synthetic set name')}"


def synthetic_series_group(name: str, study: str, series: str) -> str:
    """Path of a synthetic series' OME-Zarr image group: ``synthetic/<name>/studies/<study>/<series>``."""
    return f"{synthetic_dir(name)}/{series_group(study, series)}"


def synthetic_commit_marker(name: str, study: str, series: str) -> str:
    """Path of a synthetic series' commit marker: ``synthetic/<name>/commits/<study>/<series>.json``."""
    return f"{synthetic_dir(name)}/{commit_marker(study, series)}"


def eval_cache_dir(cache_key: str) -> str:
    """Reserved: an evaluation cache, keyed by the content hash of its inputs."""
    return f"{EVAL}/{check_name(cache_key, 'cache key')}"


def selected_file(model: str, run: str) -> str:
    """Where ``breastflow select`` records the chosen checkpoint of a run: ``checkpoints/<model>/<run>/selected.json``."""
    return f"{checkpoint_dir(model, run)}/{SELECTED_FILE}"


def report_dir(model: str, run: str) -> str:
    """Folder of a run's synthesis report, beside its checkpoints: ``checkpoints/<model>/<run>/report``."""
    return f"{checkpoint_dir(model, run)}/{REPORT_DIR}"


def checkpoint_eval_file(model: str, run: str, checkpoint: str, config_key: str) -> str:
    """One checkpoint's stored evaluation under one metric config:
    ``eval/checkpoints/<model>/<run>/<checkpoint>/<config_key>.json`` (``checkpoint`` = its folder name, ``epoch_<N>``)."""
    return (f"{EVAL}/{CHECKPOINTS}/{check_name(model, 'model')}/{check_name(run, 'run')}/"
            f"{check_name(checkpoint, 'checkpoint folder')}/{check_name(config_key, 'evaluation config key')}.json")


def sweep_file(model: str, sweep: str) -> str:
    """A sweep's record (trials, best config, best run): ``sweeps/<model>/<sweep>.json``."""
    return f"{SWEEPS}/{check_name(model, 'model')}/{check_name(sweep, 'sweep name')}.json"


SEGMENTATION = "segmentation"
UTILITY_REPORTS = "reports/utility"


def segmentation_fold_dir(experiment: str, train_set: str, fold: int) -> str:
    """One segmentation fold's checkpoint folder: ``checkpoints/segmentation/<experiment>/<train_set>/fold_<k>``.

    Raises:
        ValueError: a name that is not a plain store name, or a negative fold.
    """
    if not isinstance(fold, int) or fold < 0:
        raise ValueError(f"fold must be a non-negative integer, got {fold!r}")
    return (f"{CHECKPOINTS}/{SEGMENTATION}/{check_name(experiment, 'segmentation experiment')}/"
            f"{check_name(train_set, 'training set folder')}/fold_{fold}")


def utility_report_dir(experiment: str) -> str:
    """Folder of a segmentation utility report: ``reports/utility/<experiment>``."""
    return f"{UTILITY_REPORTS}/{check_name(experiment, 'segmentation experiment')}"
