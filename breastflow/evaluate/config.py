"""What ``evaluate`` computes and how: :class:`EvaluationConfig` and its defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from breastflow.metrics import names

#: ``feature_space`` value meaning flattened pixels instead of a feature extractor.
PIXELS = "pixels"
DEFAULT_PAIRED_METRICS: tuple[str, ...] = (names.MSE, names.MAE, names.PSNR, names.SSIM)
DEFAULT_SET_METRICS: tuple[str, ...] = ("moments", names.SWD, names.NN_ACCURACY)


class EvaluationConfig(BaseModel):
    """What :func:`breastflow.evaluate.sets.evaluate_sets` computes and how.

    Attributes:
        metrics: :data:`breastflow.evaluate.evaluators.EVALUATORS` names; ``None`` =
            :data:`DEFAULT_PAIRED_METRICS` plus :data:`DEFAULT_SET_METRICS` when
            paired, else the set metrics.
        paired: pair the images by name, or by ``(study, slice)`` when either set
            comes from a store selection (needed by paired metrics).
        data_range: intensity range R; ``None`` = the real set's observed range
            (``max - min(min, 0)``), never the files' container type
            (:mod:`breastflow.evaluate.data_range`).
        max_clipped_share: largest share of a set's pixels outside ``[0, R]``
            accepted when a requested metric clips to that window.
        allow_clipping: accept any share (still recorded and warned about).
        feature_space: ``"pixels"`` (flattened) or a feature-extractor name;
            used by ``nn_accuracy``, ``precision_recall`` and ``density_coverage``.
        protocol: preprocessing protocol for feature extractors.
        weights: extractor name (or ``"lpips"``) -> weight file; absent = the
            extractor's default / environment variable.
        device: torch device for paired metrics and feature extraction.
        swd_seed: seed of the SWD's random patches and directions.
        batch_size: images per batch.
        resize: distribution metrics need one image size: every image is resized
            to ``(resize, resize)`` (protocol
            :data:`breastflow.data.image_sets.RESIZE_PROTOCOL`) before them;
            ``None`` = refuse sets of mixed sizes. Paired metrics always use the
            native size.
        by: fairness groupings (``vendor``, ``field_strength``, ``lesion_class``);
            ``None`` = every one the real set has labels for; ``()`` = none.
        min_group_size: smallest real and fake group a distribution metric is computed on.
        privacy_features: feature extractor of the memorisation check's feature space.
        privacy_quantile: held-out distance quantile below which a synthetic image is "close".
        num_threads: torch CPU threads of the paired metrics (set, then restored); ``None`` =
            leave torch's setting alone. Set it when other work competes for the cores: the
            SSIM/MS-SSIM path slows down far more than torchmetrics' under oversubscription
            (``docs/metrics.md``); selection trials run with 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[str, ...] | None = None
    paired: bool = False
    data_range: float | None = Field(default=None, gt=0)
    max_clipped_share: float = Field(default=0.01, ge=0.0, le=1.0)
    allow_clipping: bool = False
    feature_space: str = PIXELS
    protocol: str = "standard"
    weights: dict[str, Path] = Field(default_factory=dict)
    device: str | None = None
    swd_seed: int = 0
    batch_size: int = Field(default=32, gt=0)
    resize: int | None = Field(default=None, gt=0)
    by: tuple[str, ...] | None = None
    min_group_size: int = Field(default=10, ge=2)
    privacy_features: str = "inception"
    privacy_quantile: float = Field(default=0.05, gt=0.0, lt=1.0)
    num_threads: int | None = Field(default=None, ge=1)

    def resolved_metrics(self) -> tuple[str, ...]:
        """The metric names to compute: :attr:`metrics`, or the defaults for :attr:`paired`."""
        if self.metrics is not None:
            return self.metrics
        return (DEFAULT_PAIRED_METRICS + DEFAULT_SET_METRICS) if self.paired else DEFAULT_SET_METRICS
