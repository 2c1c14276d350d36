"""How a run's checkpoints are ranked: one :class:`Criterion` per name in :data:`CRITERIA`.

Every criterion ranks a table of candidates (rows = checkpoints, columns = raw metric
values spelled as :mod:`breastflow.metrics.names`) over its metrics and picks the best;
the score is lower-is-better. The model family picks its default through
:data:`MODEL_CRITERION`:

==================  ==================================================  ==============================
criterion           score                                               families
==================  ==================================================  ==============================
``same``            SAMe (paper 003 sec. 3.3.3) over FID_Img, FID_Rad,  pix2pixhd, cyclegan (paired
                    SSIM, MSE, MAE (:func:`breastflow.select.same        image-to-image)
                    .same_score`)
``swd``             sliced Wasserstein distance                          progressive mammograms
``fid_img``         FID on Inception features                            lesion patches
``nn_accuracy_gap`` ``|1-NN accuracy - 0.5|``                            lesion patches
==================  ==================================================  ==============================

Every criterion also reports the SAMe of its metrics (one metric: that metric scaled to
``[0, 1]``) and the scaled table, so the report's bars mean the same thing for every family.

Metric names a user may rank by (:data:`SELECTABLE`) are the evaluation metrics
(:data:`breastflow.evaluate.evaluators.EVALUATORS`), values they derive (``nn_accuracy_gap``,
``precision`` ...) and the lesion-box variants ``roi_*``; an unknown name is an error naming
the nearest ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from breastflow.metrics import names
from breastflow.registry import Registry
from breastflow.select.same import DEFAULT_SAME_METRICS, same_score


@dataclass(frozen=True)
class Ranking:
    """A criterion's verdict over the candidates.

    Attributes:
        score: criterion score per candidate (lower is better), index = candidate names.
        same: SAMe of the criterion's metrics per candidate.
        scaled: ``(candidates, metrics)`` scaled to ``[0, 1]``, 0 = best.
        choice: the winning candidate.
        constant_metrics: metrics equal for every candidate (within SAMe's tolerance).
    """

    score: pd.Series
    same: pd.Series
    scaled: pd.DataFrame
    choice: str
    constant_metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class Criterion:
    """A registered ranking rule.

    Attributes:
        metrics: the metrics it ranks by when the user names none.
        rank: ``(table, metrics) -> Ranking``.
        description: one line for ``--help`` and the report.
    """

    metrics: tuple[str, ...]
    rank: Callable[[pd.DataFrame, Sequence[str]], Ranking]
    description: str


CRITERIA: Registry[Criterion] = Registry("selection criterion")
#: model family -> criterion name (families not listed use ``same``)
MODEL_CRITERION: dict[str, str] = {
    "pix2pixhd": "same",
    "cyclegan": "same",
    "template": "same",
    "progressive_gan": "swd",
    "stylegan_mammo": "swd",
    "lesion_gan": "fid_img",
    "lesion_dcgan": "fid_img",
}


def _same(table: pd.DataFrame, metrics: Sequence[str]) -> Ranking:
    result = same_score(table, list(metrics))
    return Ranking(score=result.same, same=result.same, scaled=result.scaled, choice=result.choice,
                   constant_metrics=result.constant_metrics)


def _lowest(metric: str) -> Callable[[pd.DataFrame, Sequence[str]], Ranking]:
    """Rank by one metric: the lowest value of ``metric`` wins (first candidate on ties)."""

    def rank(table: pd.DataFrame, metrics: Sequence[str]) -> Ranking:
        result = same_score(table, list(metrics))
        score = pd.to_numeric(table[metric]).astype(float)
        if metric in names.HIGHER_IS_BETTER:
            score = -score
        choice = str(score.idxmin())
        return Ranking(score=score.rename("score"), same=result.same, scaled=result.scaled, choice=choice,
                       constant_metrics=result.constant_metrics)

    return rank


CRITERIA.add("same", Criterion(DEFAULT_SAME_METRICS, _same,
                               "SAMe: mean of min-max scaled metrics (paper 003), lowest wins"))
CRITERIA.add("swd", Criterion((names.SWD,), _lowest(names.SWD), "lowest sliced Wasserstein distance"))
CRITERIA.add("fid_img", Criterion((names.FID_IMG,), _lowest(names.FID_IMG), "lowest FID (Inception)"))
CRITERIA.add("nn_accuracy_gap", Criterion((names.NN_ACCURACY_GAP,), _lowest(names.NN_ACCURACY_GAP),
                                          "1-NN accuracy closest to 0.5"))


def criterion_for(model: str, name: str | None = None) -> tuple[str, Criterion]:
    """The criterion ``name`` or, when ``None``, the model family's (:data:`MODEL_CRITERION`).

    Raises:
        breastflow.registry.RegistryError: an unknown criterion name (nearest names suggested).
    """
    chosen = name or MODEL_CRITERION.get(model.lower(), "same")
    return chosen.lower(), CRITERIA.get(chosen)


#: rankable metric name -> the evaluation metric (:data:`EVALUATORS` name) that computes it; ``roi_*`` -> ``"roi"``
SELECTABLE: Registry[str] = Registry("metric")
ROI = "roi"


def _fill_selectable() -> None:
    from breastflow.evaluate.evaluators import EVALUATORS

    derived = {names.NN_ACCURACY_GAP: names.NN_ACCURACY, names.PRECISION: "precision_recall",
               names.RECALL: "precision_recall", names.DENSITY: "density_coverage",
               names.COVERAGE: "density_coverage", names.MOMENTS_W1: "moments"}
    for name in EVALUATORS.names():
        if name in names.HIGHER_IS_BETTER or name in names.LOWER_IS_BETTER:
            SELECTABLE.add(name, name)
    for name, evaluator in derived.items():
        if name not in SELECTABLE:
            SELECTABLE.add(name, evaluator)
    for roi_name in names.ROI_METRICS.values():
        SELECTABLE.add(roi_name, ROI)


_fill_selectable()


def evaluator_of(metric: str) -> str:
    """The evaluation metric computing ``metric`` (``"roi"`` for lesion-box variants).

    Raises:
        breastflow.registry.RegistryError: not a rankable metric; names the nearest ones.
    """
    return SELECTABLE.get(metric)
