"""The main job on embedded defaults: phantom cohort -> store -> baseline evaluation.

``breastflow demo OUT`` runs every stage that exists today, end to end, on a
small phantom cohort, with no server to start by hand:

1. writes a deterministic multi-vendor DCE-MRI phantom cohort (DICOM + truth);
2. ingests it into a de-identified Zarr store (``executor=auto``: a cohort this
   small runs in-process, as ``breastflow ingest`` does; large ones go to a Dask cluster);
3. reads the catalog back;
4. evaluates two *baseline* pre -> post-contrast "generators" on the held-out
   studies with the paired metrics at full resolution (identity: the
   pre-contrast image itself; linear: a global intensity map fitted on the
   training split), and lets SAMe pick between them;
5. measures each annotated lesion's contrast-kinetics curve (mean in its
   Duke-style box per phase, paper 003 Fig 7) on the *stored* phases and checks
   it against the curve type the phantom designed: a check that ingestion kept
   the enhancement between phases.

The baselines are honest lower bounds that a trained Pix2PixHD must beat; they
are not presented as models. Intensities are compared on a per-case scale that
keeps enhancement between phases (divided by the pre-contrast 99th percentile
inside the study), never per-phase min-max.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from breastflow.deid.pseudonym import KEY_ENV_VAR

PRE, POST1 = "pre", "post_1"
BASELINE_METRICS = ("mse", "mae", "psnr", "ssim")
SAME_METRICS = ("mse", "mae", "ssim")


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes:
        cohort_dir: the phantom cohort.
        store: the Zarr store path.
        ingest_summary: counts from the ingest report.
        catalog: the store's catalog.
        baselines: one row per baseline candidate, metric means over held-out slices.
        same_choice: the baseline SAMe picks.
        eval_studies: pseudonyms of the studies evaluated.
        eval_set: which studies were evaluated: ``"held-out"`` (val + test
            splits) or ``"all"`` when the small cohort's split held none out.
        kinetics: one row per annotated lesion with >= 2 post-contrast phases:
            study, lesion, designed and measured curve type.
    """

    cohort_dir: Path
    store: Path
    ingest_summary: dict
    catalog: pd.DataFrame
    baselines: pd.DataFrame
    same_choice: str
    eval_studies: list[str]
    eval_set: str
    kinetics: pd.DataFrame


@contextmanager
def demo_key(out_dir: Path) -> Iterator[bool]:
    """Make a pseudonym key available for the demo run.

    Uses ``BREASTFLOW_PSEUDONYM_KEY`` when set. Otherwise creates a random key
    in ``OUT/pseudonym.key`` (mode 0600; reused by later demo runs so
    pseudonyms stay stable) and exposes it for the duration of the run. Never
    an unkeyed hash.

    Yields:
        True if the key came from the demo key file.
    """
    if os.environ.get(KEY_ENV_VAR):
        yield False
        return
    key_file = out_dir / "pseudonym.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    os.environ[KEY_ENV_VAR] = key_file.read_text().strip()
    try:
        yield True
    finally:
        os.environ.pop(KEY_ENV_VAR, None)


def per_case_scale(pre: np.ndarray) -> float:
    """The per-case intensity unit: the pre-contrast 99th percentile (> 0)."""
    scale = float(np.percentile(pre, 99))
    return scale if scale > 0 else 1.0


def fit_linear_baseline(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Least-squares ``post ≈ a * pre + b`` over all voxels of the training pairs.

    Args:
        pairs: ``(pre, post)`` volumes ``(Z, Y, X)`` on the per-case scale.
    """
    pre = np.concatenate([p.ravel() for p, _ in pairs])
    post = np.concatenate([q.ravel() for _, q in pairs])
    a, b = np.polyfit(pre, post, 1)
    return float(a), float(b)


def load_pairs(store: str, catalog: pd.DataFrame, studies: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read ``(pre, post_1)`` of ``studies`` from the store on the per-case scale."""
    from breastflow.store.fs import StoreLocation
    from breastflow.store.zarr_io import open_series_array

    loc = StoreLocation.from_url(store)
    pairs = []
    for study in studies:
        pre = np.asarray(open_series_array(loc, study, PRE)[:], dtype=np.float64)
        post = np.asarray(open_series_array(loc, study, POST1)[:], dtype=np.float64)
        scale = per_case_scale(pre)
        pairs.append((pre / scale, post / scale))
    return pairs


def evaluate_baselines(store: str, catalog: pd.DataFrame) -> tuple[pd.DataFrame, list[str], str]:
    """Paired metrics of the identity and linear baselines on held-out studies.

    Splits are per patient and stable under incremental ingestion, so a very
    small cohort can have every patient in ``train``; then the baselines are
    fitted and evaluated on all studies, and the returned set name says so.

    Returns:
        (table indexed by candidate with metric means, evaluated study
        pseudonyms, ``"held-out"`` or ``"all"``).

    Raises:
        ValueError: no study has both ``pre`` and ``post_1``.
    """
    from breastflow.metrics.paired import paired_metrics

    with_pair = catalog.groupby("study")["series"].agg(set)
    usable = sorted(s for s, roles in with_pair.items() if {PRE, POST1} <= roles)
    if not usable:
        raise ValueError("no study in the store has both a pre-contrast and a first post-contrast series")
    split = catalog.drop_duplicates("study").set_index("study")["split"]
    train = [s for s in usable if split[s] == "train"] or usable
    held_out = [s for s in usable if split[s] != "train"]
    eval_set = "held-out" if held_out else "all"
    held_out = held_out or usable
    a, b = fit_linear_baseline(load_pairs(store, catalog, train))
    per_candidate: dict[str, list[dict[str, np.ndarray]]] = {"identity": [], "linear": []}
    for pre, post in load_pairs(store, catalog, held_out):
        data_range = float(post.max() - post.min())
        for name, fake in (("identity", pre), ("linear", a * pre + b)):
            result = paired_metrics(fake, post, data_range=data_range, metrics=BASELINE_METRICS)
            per_candidate[name].append(result.per_case)
    rows = {
        name: {m: float(np.mean(np.concatenate([case[m] for case in cases]))) for m in BASELINE_METRICS}
        for name, cases in per_candidate.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "candidate"
    return table, held_out, eval_set


def kinetics_check(store: str, catalog: pd.DataFrame) -> pd.DataFrame:
    """Measured vs designed curve type of every annotated lesion in the store.

    The measured curve is the mean intensity in the lesion box per phase,
    divided by the pre-contrast mean over the body (one scale per case, so
    enhancement between phases is kept), classified with the BI-RADS rule of
    :func:`breastflow.metrics.kinetics.classify_curve`.

    Returns:
        Columns ``study, lesion, lesion_class, designed, measured``; lesions of
        studies with fewer than two post-contrast phases are left out.
    """
    from breastflow.metrics.kinetics import classify_curve
    from breastflow.store.annotation_commit import read_annotation_commits
    from breastflow.store.fs import StoreLocation
    from breastflow.store.zarr_io import open_series_array

    loc = StoreLocation.from_url(store)
    rows = []
    for record in read_annotation_commits(loc):
        roles = set(catalog.loc[catalog["study"] == record.study, "series"])
        posts = sorted((r for r in roles if r.startswith("post_")), key=lambda r: int(r.split("_")[1]))
        boxes = [b for b in record.boxes if b.curve_type and b.start_slice is not None]
        if len(posts) < 2 or PRE not in roles or not boxes:
            continue
        phases = [np.asarray(open_series_array(loc, record.study, role)[:], dtype=np.float64)
                  for role in (PRE, *posts)]
        reference = float(phases[0][phases[0] > 0].mean())
        for box in boxes:
            region = (slice(box.start_slice, box.end_slice + 1), slice(box.start_row, box.end_row + 1),
                      slice(box.start_column, box.end_column + 1))
            means = np.array([phase[region].mean() / reference for phase in phases])
            rows.append({"study": record.study, "lesion": box.lesion_id, "lesion_class": box.lesion_class,
                         "designed": box.curve_type, "measured": classify_curve(means).value})
    return pd.DataFrame(rows, columns=["study", "lesion", "lesion_class", "designed", "measured"])


def run_demo(out_dir: Path, studies: int = 12, seed: int = 0, workers: int = 2) -> DemoResult:
    """Run the whole demo; see the module docstring.

    Args:
        out_dir: working folder (created); holds ``phantom/``, ``store/`` and,
            if no key is configured, ``pseudonym.key``.
        studies: phantom studies to generate (>= 2 so a split can hold one out).
        seed: phantom and split seed.
        workers: Dask LocalCluster workers, used when the cohort is large enough for a cluster.

    Raises:
        ValueError: ``studies`` < 2.
    """
    from breastflow.ingest.config import ClusterConfig, IngestConfig
    from breastflow.ingest.pipeline import run_ingest
    from breastflow.phantom.cohort import write_cohort
    from breastflow.phantom.config import PhantomConfig
    from breastflow.select.same import same_score
    from breastflow.store.catalog import read_catalog
    from breastflow.store.fs import StoreLocation
    from breastflow.store.splits import SplitConfig

    if studies < 2:
        raise ValueError(f"the demo needs at least 2 studies (got {studies}) so one can be held out")
    out_dir.mkdir(parents=True, exist_ok=True)
    cohort_dir, store = out_dir / "phantom", out_dir / "store"
    write_cohort(cohort_dir, PhantomConfig(studies=studies, seed=seed))
    with demo_key(out_dir):
        config = IngestConfig(cluster=ClusterConfig(workers=workers), splits=SplitConfig(seed=seed))
        report = run_ingest(str(cohort_dir / "dicom"), str(store), config)
    catalog = read_catalog(StoreLocation.from_url(str(store)))
    baselines, n_eval, eval_set = evaluate_baselines(str(store), catalog)
    choice = same_score(baselines, metrics=list(SAME_METRICS)).choice
    kinetics = kinetics_check(str(store), catalog)
    return DemoResult(cohort_dir, store, report.summary(), catalog, baselines, choice, n_eval, eval_set, kinetics)
