"""The demo's utility step: does the synthetic post-contrast help segmentation? Paper 003's scenario 2, reduced.

Step 8 of :mod:`breastflow.demo`, through the project's own stages only: the
selected checkpoint (step 7) writes synthetic ``post_1`` for every study
(``breastflow generate --split all``'s library call,
:func:`breastflow.generate.run.generate_synthetic`), then
:func:`breastflow.segmentation.utility.run_scenario2_row` trains 3D U-Nets
(MONAI DynUNet, quick plan) on real pre-contrast volumes and on real pre +
synthetic post volumes, as folds in parallel Ray tasks, and tests both
ensembles on real post-contrast volumes (paper 003 Table 3, scenario 2: Dice
0.484 -> 0.663).

A 24-study cohort's 80/10/10 patient split leaves 0-4 tumour cases in the test
split, so the demo tests on the cases of the ``val`` and ``test`` splits
together (:data:`DemoUtility.test_splits`): the studies the generator never
trained on (the checkpoint was *chosen* on ``val``, by image similarity, which
says nothing of these studies' masks). The cross-validation pool is then the
``train`` split's single-lesion cases. When fewer than
:attr:`DemoUtility.min_test_cases` remain, the step is skipped with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from breastflow.demo import POST1

if TYPE_CHECKING:
    from breastflow.segmentation.utility import UtilityResult

@dataclass(frozen=True)
class DemoUtility:
    """Settings of the demo's reduced scenario-2 row (measured: ``docs/segmentation.md``, "The demo row").

    Attributes:
        epochs: training epochs per fold (quick plan: 10 steps of 4 patches each); 0 skips the step.
        folds: cross-validation folds per training set (paper 003: 5).
        test_splits: catalog splits whose cases form the test set (see the module docstring).
        min_test_cases: fewer test tumour cases than this skip the step.
    """

    epochs: int = 40
    folds: int = 2
    test_splits: tuple[str, ...] = ("val", "test")
    min_test_cases: int = 2


@dataclass(frozen=True)
class UtilityStep:
    """What the demo's utility step produced.

    Attributes:
        checkpoint: the checkpoint whose synthetic set was used (the selected one).
        synthetic: the synthetic set of every study (``<store>/synthetic/<name>/``).
        generated: False when the set already held every study and was reused (or the step was skipped).
        result: the rows (``None`` when skipped); skipped: why the rows were not run.
        pool, test: cross-validation pool and test tumour cases.
    """

    checkpoint: str
    synthetic: str
    generated: bool
    result: UtilityResult | None
    skipped: str | None
    pool: int
    test: int


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided p a Wilcoxon signed-rank test of ``n`` pairs can give (exact test): ``2 / 2**n``."""
    return 2.0 / 2 ** n if n > 0 else float("nan")


def generate_all(store: str, checkpoint: str, name: str, model: str) -> bool:
    """Write ``post_1`` of every study into synthetic set ``name``, unless it holds every study with ``pre`` already.

    Returns:
        True if generated now, False if the set was reused.
    """
    from breastflow.generate.config import GenerateConfig, GenerateSplit
    from breastflow.generate.run import generate_synthetic
    from breastflow.generate.synthetic import SyntheticSetError, read_synthetic_commits
    from breastflow.store.catalog import read_catalog
    from breastflow.store.fs import StoreLocation

    loc = StoreLocation.from_url(store)
    catalog = read_catalog(loc)
    wanted = set(catalog.loc[catalog["series"] == "pre", "study"])
    try:
        present = {r.study for r in read_synthetic_commits(loc, name) if r.series == POST1}
    except SyntheticSetError:
        present = set()
    if wanted <= present:
        return False
    generate_synthetic(GenerateConfig(checkpoint=checkpoint, store=store, split=GenerateSplit.ALL, name=name,
                                      model=model))
    return True


def run_utility_step(store: str, model: str, run: str, checkpoint: str, settings: DemoUtility,
                     notify: Callable[[str], None], timings: dict[str, float]) -> UtilityStep:
    """Generate every study's synthetic ``post_1`` from ``checkpoint`` and run the reduced scenario-2 row.

    Args:
        store: the demo's store; model, run: the training run; checkpoint: the selected checkpoint's URI.
        settings: epochs, folds, test splits.
        notify: receives progress lines.
        timings: wall seconds of ``generate_all`` and ``utility`` are added here.

    Raises:
        What generation and :func:`~breastflow.segmentation.utility.run_utility` raise.
    """
    from breastflow.segmentation.cases import pool_cases, segmentation_cases, test_cases
    from breastflow.segmentation.train import FoldTrainConfig
    from breastflow.segmentation.utility import run_scenario2_row
    from breastflow.store import layout
    from breastflow.train.checkpoint import epoch_of_dir

    epoch = epoch_of_dir(checkpoint)
    name = layout.check_name(f"{run}-e{epoch}-all", "synthetic set name")
    cases = segmentation_cases(store, test_splits=settings.test_splits)
    pool, tests = pool_cases(cases), test_cases(cases)
    skipped = None
    if len(tests) < settings.min_test_cases:
        skipped = (f"the patient-level split left {len(tests)} tumour case(s) in the {'+'.join(settings.test_splits)} "
                   f"split(s), fewer than {settings.min_test_cases}: no Dice worth a row (try another --seed or more "
                   "--studies)")
    elif len({c.patient for c in pool}) < settings.folds:
        skipped = f"{len(pool)} pool case(s) for {settings.folds} folds"
    if skipped:
        return UtilityStep(checkpoint, name, False, None, skipped, len(pool), len(tests))
    start = time.perf_counter()
    notify(f"generating synthetic post_1 of every study from {checkpoint.rstrip('/').rsplit('/', 1)[-1]} "
           f"-> synthetic/{name}")
    generated = generate_all(store, checkpoint, name, model)
    timings["generate_all"] = time.perf_counter() - start
    notify(f"segmentation utility, scenario 2 reduced: 2 training sets x {settings.folds} folds of a 3D U-Net "
           f"(MONAI DynUNet, {settings.epochs} epochs) on {len(pool)} pool cases as Ray tasks; test on "
           f"{len(tests)} cases")
    start = time.perf_counter()
    result = run_scenario2_row(store, name, quick=True, folds=settings.folds,
                               train_config=FoldTrainConfig.quick(epochs=settings.epochs, torch_threads=1),
                               test_splits=settings.test_splits)
    timings["utility"] = time.perf_counter() - start
    return UtilityStep(checkpoint, name, generated, result, None, len(pool), len(tests))
