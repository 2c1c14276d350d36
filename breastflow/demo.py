"""The main job on embedded defaults: phantom -> store -> baselines -> Pix2PixHD on Ray Train -> selection -> report.

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
5. measures each annotated lesion's contrast-kinetics curve (mean over its
   mask voxels inside its box per phase; paper 003 Fig 7) on the *stored* phases and checks
   it against the curve type the phantom designed: a check that ingestion kept
   the enhancement between phases;
6. trains Pix2PixHD briefly (:class:`DemoTraining`; :mod:`breastflow.demo_model`) on the training split with
   the project's engine on Ray Train (a local Ray instance started and shut
   down here), writes the held-out studies' synthetic ``post_1`` with
   ``breastflow generate``'s library call, and compares it against the two
   baselines (:func:`breastflow.generate.compare.compare_with_baselines`:
   lesion-box MAE, whole-image MAE, PSNR, SSIM), saying per metric whether the
   model beats both;
7. evaluates every checkpoint of that run on Ray Tune (one trial per checkpoint;
   :mod:`breastflow.demo_select`), picks the best by SAMe over paper 003's
   metrics that run here (``selected.json`` in the store), and writes the
   synthesis report of the chosen checkpoint on the test split beside it
   (``checkpoints/<model>/<run>/report/report.html``);
8. asks whether the synthetic data helps a clinical task (:mod:`breastflow.demo_utility`):
   the chosen checkpoint writes synthetic ``post_1`` for every study, and 3D
   U-Nets (MONAI DynUNet, folds as Ray tasks) trained on real pre-contrast vs
   real pre + synthetic post-contrast volumes are tested on real post-contrast
   volumes: paper 003's scenario 2, reduced (Dice per row, paired Wilcoxon test).

Training, selection and the segmentation folds share one local Ray instance.

The baselines are honest lower bounds that a trained Pix2PixHD must beat; they
are not presented as models. Intensities are compared on a per-case scale that
keeps enhancement between phases (divided by the pre-contrast 99th percentile
inside the study), never per-phase min-max.

A second run in the same ``OUT`` does not repeat work: ingestion skips committed
series, training continues the run of the same name (and returns at once when it
is complete), and an existing synthetic set of the same checkpoint is reused.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from breastflow.deid.pseudonym import KEY_ENV_VAR, pseudonym_key
from breastflow.demo_training import POST1, DemoTraining

if TYPE_CHECKING:
    from breastflow.demo_model import ModelStep
    from breastflow.demo_select import SelectStep
    from breastflow.demo_utility import DemoUtility, UtilityStep

PRE = "pre"
#: The demo cohort's ``PhantomConfig.lesion_t1_scale``: the phantom's default, lesions nearly isointense to FGT
#: before contrast as on most real fat-sat T1. ``--lesion-t1-scale 0.7`` makes them hypointense masses, the setting
#: in which Pix2PixHD learns lesion enhancement (docs/train_results.md); on one demo run it did not lift the
#: reduced segmentation row (docs/segmentation.md, "The demo row").
DEMO_LESION_T1_SCALE = 1.0
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
        model: the Pix2PixHD step (training, synthetic set, comparison); None when skipped.
        model_skipped: why the model step was skipped (None when it ran).
        timings: wall seconds per step (``phantom``, ``ingest``, ``catalog``, ``baselines``,
            ``kinetics``, ``train``, ``generate``, ``compare``, ``select``, ``report``, ``generate_all``,
            ``utility``; the last seven only when the model step ran).
        selection: the selection step (checkpoint chosen on Ray Tune, synthesis report); None when
            the model step was skipped.
        utility: the segmentation utility step (reduced scenario 2); None when the model step was
            skipped or the utility epochs are 0.
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
    model: ModelStep | None = None
    model_skipped: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    selection: SelectStep | None = None
    utility: UtilityStep | None = None


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
    with pseudonym_key(key_file.read_text().strip()):
        yield True


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
    """Read ``(pre, post_1)`` of ``studies`` from the store on the per-case scale.

    Stored values are first mapped to physical values with each series' rescale
    slope/intercept (:func:`breastflow.generate.compare.read_physical`, the rule the
    model comparison uses too).
    """
    from breastflow.generate.compare import read_physical
    from breastflow.store.fs import StoreLocation

    loc = StoreLocation.from_url(store)
    pairs = []
    for study in studies:
        pre = read_physical(loc, study, PRE)
        post = read_physical(loc, study, POST1)
        scale = per_case_scale(pre)
        pairs.append((pre / scale, post / scale))
    return pairs


def paired_studies(catalog: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Studies with both ``pre`` and ``post_1``: ``(train split, val + test splits)``, each sorted."""
    with_pair = catalog.groupby("study")["series"].agg(set)
    usable = sorted(s for s, roles in with_pair.items() if {PRE, POST1} <= roles)
    split = catalog.drop_duplicates("study").set_index("study")["split"]
    return [s for s in usable if split[s] == "train"], [s for s in usable if split[s] != "train"]


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

    train, held_out = paired_studies(catalog)
    usable = sorted([*train, *held_out])
    if not usable:
        raise ValueError("no study in the store has both a pre-contrast and a first post-contrast series")
    train = train or usable
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

    The measured curve is the mean physical intensity (rescale applied) per
    phase over the lesion's region of interest, divided by the pre-contrast mean
    over the body (one scale per case, so enhancement between phases is kept),
    classified with the BI-RADS rule of :func:`breastflow.metrics.kinetics.classify_curve`.
    The region is the lesion's voxels in the store's ``lesions`` mask inside its
    box (label = lesion id; any label when the id is absent), as a reader draws
    an ROI on the lesion; the whole box (Duke-style, paper 003 Fig 7) when the
    study has no mask. The box mean mixes in non-enhancing tissue: on a 24-study
    cohort it read two washout lesions as plateau, the mask ROI none.

    Returns:
        Columns ``study, lesion, lesion_class, designed, measured, region``; lesions of
        studies with fewer than two post-contrast phases are left out.
    """
    from breastflow.data.slices import SliceReader, mask_series
    from breastflow.generate.compare import read_physical
    from breastflow.metrics.kinetics import classify_curve
    from breastflow.store.annotation_commit import read_annotation_commits
    from breastflow.store.fs import StoreLocation

    loc = StoreLocation.from_url(store)
    reader = SliceReader(loc)
    rows = []
    for record in read_annotation_commits(loc):
        roles = set(catalog.loc[catalog["study"] == record.study, "series"])
        posts = sorted((r for r in roles if r.startswith("post_")), key=lambda r: int(r.split("_")[1]))
        boxes = [b for b in record.boxes if b.curve_type and b.start_slice is not None]
        if len(posts) < 2 or PRE not in roles or not boxes:
            continue
        phases = [read_physical(loc, record.study, role) for role in (PRE, *posts)]
        try:
            mask = reader.read_slices(record.study, mask_series("lesions"), list(range(phases[0].shape[0])))
        except FileNotFoundError:
            mask = None
        reference = float(phases[0][phases[0] > 0].mean())
        for box in boxes:
            index = box.array_index()
            roi, region = np.ones(phases[0][index].shape, dtype=bool), "box"
            if mask is not None:
                labels = mask[index]
                own = labels == box.lesion_id
                roi_mask = own if own.any() else labels > 0
                if roi_mask.any():
                    roi, region = roi_mask, "mask"
            means = np.array([phase[index][roi].mean() / reference for phase in phases])
            rows.append({"study": record.study, "lesion": box.lesion_id, "lesion_class": box.lesion_class,
                         "designed": box.curve_type, "measured": classify_curve(means).value, "region": region})
    return pd.DataFrame(rows, columns=["study", "lesion", "lesion_class", "designed", "measured", "region"])


def run_demo(out_dir: Path, studies: int = 24, seed: int = 0, workers: int = 2,
             training: DemoTraining = DemoTraining(), progress: Callable[[str], None] | None = None,
             utility: DemoUtility | None = None, lesion_t1_scale: float = DEMO_LESION_T1_SCALE) -> DemoResult:
    """Run the whole demo; see the module docstring.

    Args:
        out_dir: working folder (created); holds ``phantom/``, ``store/`` and,
            if no key is configured, ``pseudonym.key``.
        studies: phantom studies to generate (>= 2 so a split can hold one out).
        seed: phantom and split seed.
        workers: Dask LocalCluster workers, used when the cohort is large enough for a cluster.
        training: the Pix2PixHD run; ``total_epochs == 0`` skips the model step.
        progress: receives a line as each step starts and one per training epoch (None: silent).
        utility: the reduced scenario-2 row's settings (default :class:`~breastflow.demo_utility.DemoUtility`);
            ``epochs == 0`` skips it.
        lesion_t1_scale: the phantom's lesion pre-contrast T1 scale (:data:`DEMO_LESION_T1_SCALE`); a
            different value needs a new ``out_dir`` (ingestion keeps the series already committed).

    Raises:
        ValueError: ``studies`` < 2.
        ray.train.TrainingFailedError: training failed (Ray is shut down first).
    """
    from breastflow.demo_model import run_model_step, shared_ray
    from breastflow.demo_select import run_select_step
    from breastflow.demo_utility import DemoUtility, run_utility_step
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
    say = progress or (lambda line: None)
    utility = utility or DemoUtility()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    out_dir.mkdir(parents=True, exist_ok=True)
    cohort_dir, store = out_dir / "phantom", out_dir / "store"
    say(f"writing {studies} phantom studies")
    write_cohort(cohort_dir, PhantomConfig(studies=studies, seed=seed, lesion_t1_scale=lesion_t1_scale))
    lap("phantom")
    say("ingesting")
    with demo_key(out_dir):
        config = IngestConfig(cluster=ClusterConfig(workers=workers), splits=SplitConfig(seed=seed))
        report = run_ingest(str(cohort_dir / "dicom"), str(store), config)
    lap("ingest")
    catalog = read_catalog(StoreLocation.from_url(str(store)))
    lap("catalog")
    baselines, n_eval, eval_set = evaluate_baselines(str(store), catalog)
    choice = same_score(baselines, metrics=list(SAME_METRICS)).choice
    lap("baselines")
    kinetics = kinetics_check(str(store), catalog)
    lap("kinetics")
    model, skipped, selection, useful = None, None, None, None
    train, held_out = paired_studies(catalog)
    if training.total_epochs == 0:
        skipped = "train epochs 0"
    elif not held_out or not train:
        skipped = (f"the split left {len(train)} training and {len(held_out)} held-out studies; the model needs both "
                   "(try another --seed or more --studies)")
    else:
        say(f"training {training.model} for {training.total_epochs} epochs on Ray Train "
            f"({len(train)} training studies)")
        with shared_ray(str(store), training):
            model = run_model_step(str(store), catalog, training, say, timings)
            selection = run_select_step(str(store), catalog, training.model, model.run, say, timings)
            if utility.epochs > 0:
                useful = run_utility_step(str(store), training.model, model.run, selection.selection.selected,
                                          utility, say, timings)
    return DemoResult(cohort_dir, store, report.summary(), catalog, baselines, choice, n_eval, eval_set, kinetics,
                      model, skipped, timings, selection, useful)
