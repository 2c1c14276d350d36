"""Paper 003's segmentation utility experiment (sec. 4.3, Table 3) on a store: :func:`run_utility`.

For the requested scenarios (:mod:`.scenarios`), every distinct training set
is trained once (``training_sets``), as ``k`` folds in parallel on Ray
(:mod:`.folds_ray`), each fold checkpointed under
``checkpoints/segmentation/<experiment>/<train_set>/fold_<k>`` and resumed
from there; the test items of every row are predicted by the folds' ensemble
(mean softmax) and scored by Dice per test case. Each augmented or
synthetic-only row is compared with its scenario's baseline row by a paired
Wilcoxon signed-rank test over the test cases (``scipy.stats.wilcoxon``),
with a per-vendor breakdown. Cross-vendor rows (NIH R01 hook) train on one
vendor's pool cases and test on each vendor's test cases, through the same
per-source image transform (identity today).

``experiment`` defaults to a content key of everything that shapes a fold
(pool studies, plan, preprocessing, training config, folds), so a second run
reuses or resumes the same checkpoints and a changed configuration starts a
new experiment.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import wilcoxon

from breastflow.segmentation.cases import (
    DEFAULT_TEST_SPLITS,
    check_test_splits,
    pool_cases,
)
from breastflow.segmentation.experiment import (
    build_experiment,
    fold_items,
    test_items,
    train_items,
)
from breastflow.segmentation.folds import N_FOLDS, Fold, patient_folds
from breastflow.segmentation.folds_ray import (
    EnsembleJob,
    FoldJob,
    FoldOutcome,
    gpu_share,
    submit_ensemble,
    submit_folds,
)
from breastflow.segmentation.plan import plan_from_cases
from breastflow.segmentation.preprocess import PreprocessConfig, SegmentationSource
from breastflow.segmentation.scenarios import (
    CrossVendorRow,
    RowRole,
    SourceTransform,
    TrainSet,
    cross_vendor_rows,
    source_transforms,
)
from breastflow.segmentation.train import FoldTrainConfig
from breastflow.store.fs import StoreLocation
from breastflow.store.layout import segmentation_fold_dir

#: Folds of the quick configuration (the full one uses paper 003's 5).
QUICK_FOLDS = 3
#: FoldTrainConfig fields that change how fast a fold trains, never what it learns (same patches, same
#: losses: tests/segmentation/test_segmentation_patch_loader.py): left out of the experiment key.
RESULT_NEUTRAL = {"prefetch"}


def key_exclusions(config: FoldTrainConfig) -> set[str]:
    """Config fields left out of the experiment key: :data:`RESULT_NEUTRAL`, and ``amp`` off CUDA (ignored there:
    CPU folds train in fp32 whatever it says, so CPU keys stay what they were before it existed)."""
    return RESULT_NEUTRAL | (set() if str(config.device).startswith("cuda") else {"amp"})


@dataclass(frozen=True)
class RowResult:
    """One row's result: Dice of the ensemble per test case and against the baseline.

    Attributes:
        scenario: 1-4, or 0 for a cross-vendor row; train, train_label: training set key and label;
            test: test source; role: baseline / augmentation / synthetic only (cross-vendor: ``cross-vendor``).
        dice: Dice per test study; dice_mean: their mean; per_vendor: mean Dice per test vendor.
        paper_dice: paper 003's Table 3 value (``None`` for cross-vendor rows).
        baseline_delta, wilcoxon_p: mean paired difference to the scenario's baseline row and
            the two-sided Wilcoxon signed-rank p-value (``None`` on a baseline row; p NaN when every
            difference is zero).
        train_vendor, test_vendor: the vendors of a cross-vendor row.
    """

    scenario: int
    train: str
    train_label: str
    test: str
    role: str
    dice: dict[str, float]
    dice_mean: float
    per_vendor: dict[str, float]
    paper_dice: float | None = None
    baseline_delta: float | None = None
    wilcoxon_p: float | None = None
    train_vendor: str | None = None
    test_vendor: str | None = None

    @property
    def n_test(self) -> int:
        return len(self.dice)


@dataclass(frozen=True)
class UtilityResult:
    """What :func:`run_utility` measured.

    Attributes:
        experiment: the checkpoint/report name; store, synthetic: inputs; quick: reduced configuration.
        folds: folds per training; rows: Table 3 rows; cross_vendor: cross-vendor rows.
        trainings: fold outcomes per training folder; seconds: wall time; notes: what was reduced or skipped.
        report: store paths of the written report files (empty when not written).
        test_splits: the catalog splits whose cases were the test set.
    """

    experiment: str
    store: str
    synthetic: str | None
    quick: bool
    folds: int
    rows: tuple[RowResult, ...]
    cross_vendor: tuple[RowResult, ...]
    trainings: dict[str, tuple[FoldOutcome, ...]]
    seconds: float
    notes: tuple[str, ...] = ()
    report: dict[str, str] = field(default_factory=dict)
    test_splits: tuple[str, ...] = DEFAULT_TEST_SPLITS

    def to_json(self) -> dict:
        """``{"rows": [{"scenario", "train", "test", "dice_mean", "n_test", ...}], "cross_vendor": [...], ...}``."""
        def row(r: RowResult) -> dict:
            return {"scenario": r.scenario, "train": r.train, "test": r.test, "role": r.role,
                    "dice_mean": r.dice_mean, "n_test": r.n_test, "paper_dice": r.paper_dice,
                    "baseline_delta": r.baseline_delta, "wilcoxon_p": _json_float(r.wilcoxon_p),
                    "per_vendor": r.per_vendor, "dice": r.dice,
                    **({"train_vendor": r.train_vendor, "test_vendor": r.test_vendor} if r.train_vendor else {})}
        return {"experiment": self.experiment, "store": self.store, "synthetic": self.synthetic,
                "quick": self.quick, "folds": self.folds, "test_splits": list(self.test_splits),
                "seconds": round(self.seconds, 1),
                "rows": [row(r) for r in self.rows], "cross_vendor": [row(r) for r in self.cross_vendor],
                "trainings": {k: {"val_dice": [o.val_dice for o in v], "resumed_from": [o.start_epoch for o in v],
                                  "reused": [o.reused for o in v]} for k, v in self.trainings.items()},
                "notes": list(self.notes), "report": self.report}


def _json_float(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else value


def folder_name(key: str) -> str:
    """A training key as a store folder: ``real_pre+syn_post`` -> ``real_pre-syn_post``,
    ``real_post@GE Medical`` -> ``real_post-at-ge-medical``."""
    base, _, vendor = key.partition("@")
    name = base.replace("+", "-")
    if vendor:
        name += "-at-" + "".join(c if c.isalnum() else "-" for c in vendor.lower()).strip("-")
    return name[:64]


def experiment_key(synthetic: str | None, quick: bool, pool: Iterable[str], payload: Mapping) -> str:
    """``<quick|full>-<synthetic|real>-<10 hex>``: a content key of what shapes every fold."""
    text = json.dumps({"pool": sorted(pool), **payload}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{'quick' if quick else 'full'}-{synthetic or 'real'}-{digest}"[:64]


def paired_wilcoxon(values: Mapping[str, float], baseline: Mapping[str, float]) -> tuple[float, float]:
    """``(mean difference, two-sided p)`` of a paired Wilcoxon signed-rank test over the shared studies.

    p is NaN when every difference is zero (the test is undefined) or fewer than 2 pairs.
    """
    studies = sorted(set(values) & set(baseline))
    diffs = np.asarray([values[s] - baseline[s] for s in studies], np.float64)
    if len(diffs) == 0:
        return float("nan"), float("nan")
    if len(diffs) < 2 or np.allclose(diffs, 0.0):
        return float(diffs.mean()), float("nan")
    return float(diffs.mean()), float(wilcoxon(diffs).pvalue)


def _per_vendor(dice: Mapping[str, float], vendor: Mapping[str, str]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for study, value in dice.items():
        out.setdefault(vendor[study], []).append(value)
    return {v: float(np.mean(x)) for v, x in sorted(out.items())}


@dataclass(frozen=True)
class _Training:
    key: str
    folder: str
    train_set: TrainSet
    vendor: str | None
    folds: tuple[Fold, ...]
    tests: tuple[SegmentationSource, ...]


def run_utility(store: str | StoreLocation, synthetic: str | None, scenarios: str | Iterable[int] = (1, 2, 3, 4),
                quick: bool = False, rows: Collection[str] | None = None, folds: int | None = None,
                cross_vendor: bool = True, experiment: str | None = None,
                train_config: FoldTrainConfig | None = None, preprocess: PreprocessConfig | None = None,
                transforms: Mapping[SegmentationSource, SourceTransform] | None = None,
                write_report: bool = True, seed: int = 0, max_retries: int = 3,
                test_splits: Iterable[str] = DEFAULT_TEST_SPLITS) -> UtilityResult:
    """Run the scenarios' rows on Ray and (by default) write the Table-3-style report to the store.

    Args:
        store: the store; synthetic: the synthetic set of ``syn_post`` rows.
        scenarios: numbers (``"1,2"`` or ``(2,)``); rows: keep only rows training on these keys
            (e.g. ``("real_pre", "real_pre+syn_post")`` for the reduced scenario-2 row).
        quick: reduced plan (small patch, 8-64 filters), :meth:`FoldTrainConfig.quick`, 3 folds.
        folds: folds per training (default 5, quick 3); cross_vendor: also the cross-vendor rows.
        experiment: checkpoint/report name (default: a content key, see :func:`experiment_key`).
        train_config, preprocess: override the training / preprocessing configuration
            (``preprocess.target_spacing`` and ``synthetic`` are always set from the plan and ``synthetic``).
        transforms: image transform per source (identity by default).
        write_report: write ``reports/utility/<experiment>/report.{md,html}`` and ``rows.json``.
        seed: fold seed; max_retries: Ray retries of a fold whose worker died (each resumes).
        test_splits: the catalog splits whose cases are the test set (default ``("test",)``; the
            other splits form the cross-validation pool; see :mod:`.cases`).

    Raises:
        ScenarioError, NoMaskError, SyntheticSetError, ValueError: from :func:`~.experiment.build_experiment`.
        ray.exceptions.RayTaskError: a fold or an ensemble failed.
    """
    started = time.perf_counter()
    loc = store if isinstance(store, StoreLocation) else StoreLocation.from_url(store)
    k = folds if folds is not None else (QUICK_FOLDS if quick else N_FOLDS)
    test_set = check_test_splits(test_splits)
    data = build_experiment(loc, scenarios, synthetic, k=k, seed=seed, train_keys=rows, test_splits=test_set)
    pool = pool_cases(data.cases)
    plan = plan_from_cases(pool, quick=quick)
    base_pre = preprocess or PreprocessConfig()
    pre = base_pre.model_copy(update={"target_spacing": plan.target_spacing, "synthetic": synthetic})
    config = train_config or (FoldTrainConfig.quick(torch_threads=1) if quick else FoldTrainConfig(torch_threads=1))
    payload = {"plan": plan.model_dump(mode="json"), "preprocess": pre.model_dump(mode="json"),
               "config": config.model_dump(mode="json", exclude=key_exclusions(config)), "k": k, "seed": seed}
    if test_set != DEFAULT_TEST_SPLITS:
        payload["test_splits"] = list(test_set)  # a default run keeps the key it always had
    name = experiment or experiment_key(synthetic, quick, [c.study for c in pool], payload)
    notes = []
    if quick:
        notes.append(f"quick configuration: patch {plan.patch_size}, filters {plan.filters}, {config.epochs} epochs "
                     f"x {config.iterations} steps of {config.batch_size} patches, {config.optimizer.value}, "
                     f"{k} folds (paper 003: nnU-Net 3d_fullres, 5 folds)")
    if test_set != DEFAULT_TEST_SPLITS:
        notes.append(f"test set: the cases of the catalog's {'+'.join(test_set)} split(s); the cross-validation "
                     "pool: the other split's")
    trainings = {}
    for row in data.rows:
        key = row.train.key
        prev = trainings.get(key)
        tests = (*prev.tests, row.test) if prev else (row.test,)
        trainings[key] = _Training(key, folder_name(key), row.train, None, data.folds, tuple(dict.fromkeys(tests)))
    xrows: list[CrossVendorRow] = cross_vendor_rows(data.cases) if cross_vendor else []
    for vendor in sorted({r.train_vendor for r in xrows}):
        patients = sorted({c.patient for c in pool if c.vendor == vendor})
        if len(patients) < 2:
            notes.append(f"cross-vendor: vendor {vendor} has {len(patients)} pool patient(s), fewer than 2; "
                         "its rows are skipped")
            xrows = [r for r in xrows if r.train_vendor != vendor]
            continue
        kv = min(k, len(patients))
        if kv < k:
            notes.append(f"cross-vendor: vendor {vendor} trains on {kv} folds ({len(patients)} pool patients)")
        row0 = next(r for r in xrows if r.train_vendor == vendor)
        trainings[row0.key] = _Training(row0.key, folder_name(row0.key), row0.train, vendor,
                                        tuple(patient_folds(patients, kv, seed)), (row0.test,))
    tf = source_transforms(transforms)
    outcomes, scores = _train_and_predict(loc, name, trainings, data.cases, plan, pre, config, tf, max_retries)
    vendor_of = {c.study: c.vendor for c in data.cases}
    results = _table_rows(data.rows, scores, vendor_of)
    xresults = tuple(_cross_row(r, scores, vendor_of) for r in xrows)
    result = UtilityResult(name, loc.url, synthetic, quick, k, results, xresults, outcomes,
                           time.perf_counter() - started, tuple(notes), test_splits=test_set)
    if write_report:
        from breastflow.segmentation.utility_report import write_utility_report

        result = write_utility_report(loc, result)
    return result


#: The training sets of the README's reduced scenario-2 row (real pre vs real pre + synthetic post).
SCENARIO2_ROW = ("real_pre", "real_pre+syn_post")


def run_scenario2_row(store: str | StoreLocation, synthetic: str, quick: bool = True, **options: object
                      ) -> UtilityResult:
    """The demo's reduced row: scenario 2 (test on real post) trained on real pre vs real pre + synthetic post.

    ``run_utility(store, synthetic, (2,), quick, rows=SCENARIO2_ROW, cross_vendor=False, **options)``.
    """
    return run_utility(store, synthetic, (2,), quick=quick, rows=SCENARIO2_ROW,
                       cross_vendor=bool(options.pop("cross_vendor", False)), **options)  # type: ignore[arg-type]


def _train_and_predict(loc: StoreLocation, name: str, trainings: Mapping[str, _Training], cases, plan, pre,
                       config: FoldTrainConfig, tf, max_retries: int
                       ) -> tuple[dict[str, tuple[FoldOutcome, ...]], dict[tuple[str, str], dict[str, float]]]:
    """Every fold of every training as Ray tasks, then one ensemble task per training (waiting on its folds)."""
    from breastflow.train.ray_cluster import init_ray

    started = init_ray(include_dashboard=False)
    import ray

    try:
        jobs: dict[str, list[FoldJob]] = {}
        for t in trainings.values():
            items = train_items(cases, t.train_set, vendor=t.vendor)
            jobs[t.key] = []
            for fold in t.folds:
                train, val = fold_items(items, fold)
                jobs[t.key].append(FoldJob(loc.url, t.folder, fold.index,
                                           segmentation_fold_dir(name, t.folder, fold.index), tuple(train),
                                           tuple(val), plan, pre, config, tf))
        share = gpu_share(sum(len(v) for v in jobs.values()))
        fold_refs = {key: submit_folds(v, share, max_retries) for key, v in jobs.items()}
        ensemble_refs = {}
        for t in trainings.values():
            tests = tuple(i for source in t.tests for i in test_items(cases, source))
            job = EnsembleJob(loc.url, t.folder, tuple(j.folder for j in jobs[t.key]), tests, plan, pre, config, tf)
            ensemble_refs[t.key] = submit_ensemble(job, fold_refs[t.key], share, max_retries)
        outcomes = {t.folder: tuple(ray.get(fold_refs[key])) for key, t in trainings.items()}
        scores = {}
        for key, t in trainings.items():
            by_item = ray.get(ensemble_refs[key])
            for source in t.tests:
                scores[(key, source.value)] = {i.case.study: by_item[i.identifier] for i in test_items(cases, source)}
        return outcomes, scores
    finally:
        if started:
            ray.shutdown()


def _table_rows(rows, scores, vendor_of) -> tuple[RowResult, ...]:
    out = []
    for row in rows:
        dice = scores[(row.train.key, row.test.value)]
        delta = p = None
        if row.role is not RowRole.BASELINE:
            base = next(r for r in rows if r.scenario == row.scenario and r.role is RowRole.BASELINE)
            if (base.train.key, base.test.value) in scores:
                delta, p = paired_wilcoxon(dice, scores[(base.train.key, base.test.value)])
        out.append(RowResult(row.scenario, row.train.key, row.train.label, row.test.value, row.role.value, dice,
                             float(np.mean(list(dice.values()))), _per_vendor(dice, vendor_of), row.paper_dice,
                             delta, p))
    return tuple(out)


def _cross_row(row: CrossVendorRow, scores, vendor_of) -> RowResult:
    dice = {s: v for s, v in scores[(row.key, row.test.value)].items() if vendor_of[s] == row.test_vendor}
    return RowResult(0, row.key, f"{row.train.label} ({row.train_vendor})", row.test.value, "cross-vendor", dice,
                     float(np.mean(list(dice.values()))) if dice else float("nan"), _per_vendor(dice, vendor_of),
                     train_vendor=row.train_vendor, test_vendor=row.test_vendor)


__all__ = [
    "QUICK_FOLDS",
    "SCENARIO2_ROW",
    "RowResult",
    "UtilityResult",
    "experiment_key",
    "folder_name",
    "paired_wilcoxon",
    "run_scenario2_row",
    "run_utility",
]
