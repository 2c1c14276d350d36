"""The metrics ``evaluate`` knows: one :class:`MetricEvaluator` per name in :data:`EVALUATORS`.

An evaluator turns an :class:`EvaluationContext` (the real and synthetic
:class:`~breastflow.data.image_sets.ImageSet`, the configuration and lazily
computed stacks / features shared between metrics) into flat values keyed by
:mod:`breastflow.metrics.names`. Paired metrics (``mse, mae, psnr, ssim,
ms_ssim, lpips``) compare image pairs; set metrics (``fid_img, fid_rad, frd,
nn_accuracy, precision_recall, density_coverage, moments, swd``) compare the
sets as distributions and raise :class:`~breastflow.data.image_sets.InputError`
when a set is too small for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from breastflow.data.image_sets import (
    ImageSet,
    InputError,
    indices_by_shape,
    resize_images,
)
from breastflow.evaluate.config import PIXELS, EvaluationConfig
from breastflow.metrics import names
from breastflow.metrics.cache import FeatureCache
from breastflow.registry import Registry


@dataclass
class EvaluationContext:
    """The two sets plus lazily computed, shared intermediate values.

    Attributes:
        real, fake: the sets (paired: ``fake[i]`` is the counterpart of ``real[i]``).
        config: what is computed and how.
        data_range: intensity range R, ``None`` when no metric needs one.
        artifacts: what evaluators leave for the report (``"moments"``, ``"swd"``, ``"paired_per_case"``).
        feature_cache: optional content-keyed cache of the *real* set's features
            (:class:`breastflow.metrics.cache.FeatureCache`); Fréchet metrics read and
            fill it, so a real set compared with many synthetic sets is extracted once.
        dataset_key: what the real set is, for the cache key (e.g. its dataset version
            plus the selection string); required with ``feature_cache``, since two real
            sets must never share a key. Sub-contexts (:meth:`subset`) use neither.
    """

    real: ImageSet
    fake: ImageSet
    config: EvaluationConfig
    data_range: float | None
    artifacts: dict[str, object] = field(default_factory=dict)
    feature_cache: FeatureCache | None = None
    dataset_key: str | None = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.feature_cache is not None and not self.dataset_key:
            raise ValueError("EvaluationContext: a feature cache needs a dataset_key naming the real set")

    def real_cache(self) -> tuple[FeatureCache | None, str | None]:
        """The real-feature cache and the real set's key (``(None, None)`` without a cache).

        The key includes the resize setting, since the features are of the resized stack.
        """
        if self.feature_cache is None:
            return None, None
        return self.feature_cache, f"{self.dataset_key}|resize={self.config.resize}"

    def stacks(self) -> tuple[np.ndarray, np.ndarray]:
        """Real and fake images as ``(N, H, W)`` / ``(M, H, W)`` stacks (resized when configured)."""
        if "real" not in self._cache:
            if self.config.resize is not None:
                self._cache["real"] = resize_images(self.real.images, self.config.resize)
                self._cache["fake"] = resize_images(self.fake.images, self.config.resize)
            else:
                self._cache["real"] = self.real.stack()
                self._cache["fake"] = self.fake.stack()
            if self._cache["real"].shape[1:] != self._cache["fake"].shape[1:]:
                raise InputError(
                    f"real images {self._cache['real'].shape[1:]} and fake images {self._cache['fake'].shape[1:]} "
                    "differ in size; pass --resize N (EvaluationConfig.resize)"
                )
        return self._cache["real"], self._cache["fake"]

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """Real and fake features in :attr:`EvaluationConfig.feature_space`, ``(N, D)`` and ``(M, D)``."""
        if "real_features" not in self._cache:
            real, fake = self.stacks()
            space = self.config.feature_space
            if space == PIXELS:
                self._cache["real_features"] = real.reshape(len(real), -1).astype(np.float64)
                self._cache["fake_features"] = fake.reshape(len(fake), -1).astype(np.float64)
            else:  # one network for both sets; the real features through the cache when there is one
                self._cache["real_features"], self._cache["fake_features"] = self.extractor_features(space)
        return self._cache["real_features"], self._cache["fake_features"]

    def extractor_features(self, extractor: str) -> tuple[np.ndarray, np.ndarray]:
        """Real and fake features of ``extractor`` on :meth:`stacks`, extracted once per context.

        The real features go through the feature cache when there is one. Sub-contexts
        (:meth:`subset`, the fairness groups) index these arrays instead of extracting again.

        Returns:
            ``(N, D)`` and ``(M, D)`` features as the extractor returns them (before
            :meth:`~breastflow.metrics.features.base.FeatureExtractor.normalize_sets`).
        """
        real_slot, fake_slot = f"real_features:{extractor}", f"fake_features:{extractor}"
        if real_slot not in self._cache:
            from breastflow.metrics.cache import content_key
            from breastflow.metrics.features import build_extractor
            from breastflow.metrics.protocols import get_protocol

            real, fake = self.stacks()
            net = build_extractor(extractor, weights=self.config.weights.get(extractor), device=self.config.device)
            proto = get_protocol(self.config.protocol)

            def extract(images: np.ndarray) -> np.ndarray:
                return net.extract(images, proto, self.data_range, self.config.batch_size)

            cache, real_key = self.real_cache()
            if cache is not None and real_key is not None:
                key = content_key(dataset=real_key, extractor=net.name, weights=net.weights_id(), protocol=proto,
                                  data_range=self.data_range)
                self._cache[real_slot] = cache.get_or_compute(key, lambda: extract(real))
            else:
                self._cache[real_slot] = extract(real)
            self._cache[fake_slot] = extract(fake)
        return self._cache[real_slot], self._cache[fake_slot]

    def subset(self, real_index: np.ndarray, fake_index: np.ndarray) -> EvaluationContext:
        """A context on some of the images, reusing the stacks and features already computed."""
        sub = EvaluationContext(real=self.real.subset(real_index), fake=self.fake.subset(fake_index),
                                config=self.config, data_range=self.data_range)
        for key, value in self._cache.items():
            sub._cache[key] = value[real_index] if key.startswith("real") else value[fake_index]
        return sub

    def require(self, metric: str, n_min: int, why: str) -> None:
        """Check that both sets hold at least ``n_min`` images for ``metric``.

        Raises:
            InputError: naming the metric, the set that is too small and ``why``.
        """
        for what, s in (("real", self.real), ("fake", self.fake)):
            if len(s) < n_min:
                raise InputError(f"{metric} needs at least {n_min} {what} images ({why}); {s.source} has {len(s)}")


def _never(config: EvaluationConfig) -> bool:
    return False


def extractor_windows(extractor: str, config: EvaluationConfig) -> bool:
    """Whether ``extractor`` under ``config.protocol`` clips intensities to ``[0, data_range]``.

    Network extractors see ``x / R`` clipped to ``[0, 1]`` under a data-range
    protocol (``standard``); radiomics reads raw intensities and clips nothing.
    """
    from breastflow.metrics.protocols import IntensityWindow, get_protocol

    return not extractor.startswith("radiomics") and \
        get_protocol(config.protocol).intensity is IntensityWindow.DATA_RANGE


@dataclass(frozen=True)
class MetricEvaluator:
    """A registered evaluation metric: flat values from an :class:`EvaluationContext`.

    Attributes:
        compute: the values of the metric.
        paired: compares image pairs.
        needs_data_range: uses the intensity range R.
        windows: whether, under a configuration, it clips intensities to ``[0, R]``
            (see :mod:`breastflow.evaluate.data_range`).
    """

    compute: Callable[[EvaluationContext], dict[str, float]]
    paired: bool
    needs_data_range: bool
    windows: Callable[[EvaluationConfig], bool] = _never


EVALUATORS: Registry[MetricEvaluator] = Registry("evaluation metric")


def _per_shape(ctx: EvaluationContext, per_pair: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``per_pair(fake, real)`` on each group of equal-size pairs, reassembled in pair order: ``(N,)``."""
    out = np.empty(len(ctx.real), dtype=np.float64)
    for index in indices_by_shape(ctx.real.images).values():
        real = np.stack([ctx.real.images[i] for i in index])
        fake = np.stack([ctx.fake.images[i] for i in index])
        out[index] = per_pair(fake, real)
    return out


def _paired_evaluator(metric: str) -> MetricEvaluator:
    def compute(ctx: EvaluationContext) -> dict[str, float]:
        from breastflow.metrics.paired import paired_metrics

        values = _per_shape(ctx, lambda fake, real: paired_metrics(
            fake, real, ctx.data_range, metrics=[metric], device=ctx.config.device,
            batch_size=ctx.config.batch_size, num_threads=ctx.config.num_threads).per_case[metric])
        ctx.artifacts.setdefault("paired_per_case", {})[metric] = values
        return {metric: float(values.mean()), names.sd_name(metric): float(values.std())}

    return MetricEvaluator(compute=compute, paired=True, needs_data_range=True)


for _metric in names.PAIRED_METRICS:
    EVALUATORS.add(_metric, _paired_evaluator(_metric))


def _lpips(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.lpips import lpips_distance

    values = _per_shape(ctx, lambda fake, real: lpips_distance(
        fake, real, ctx.data_range, weights=ctx.config.weights.get(names.LPIPS), device=ctx.config.device,
        batch_size=ctx.config.batch_size))
    ctx.artifacts.setdefault("paired_per_case", {})[names.LPIPS] = values
    return {names.LPIPS: float(values.mean()), names.sd_name(names.LPIPS): float(values.std())}


EVALUATORS.add(names.LPIPS, MetricEvaluator(compute=_lpips, paired=True, needs_data_range=True,
                                            windows=lambda config: True))


def _frechet_evaluator(extractor: str, metric: str) -> MetricEvaluator:
    def compute(ctx: EvaluationContext) -> dict[str, float]:
        # the same steps as breastflow.metrics.frechet.frechet_distance, on features the context keeps,
        # so fairness groups (sub-contexts) reuse them instead of running the network again
        from breastflow.metrics.features import build_extractor
        from breastflow.metrics.frechet import features_to_frechet

        ctx.require(metric, 2, "a covariance estimate")
        real, fake = ctx.extractor_features(extractor)
        net = build_extractor(extractor, weights=ctx.config.weights.get(extractor), device=ctx.config.device)
        real, fake = net.normalize_sets(real, fake)
        return {metric: net.finalize_distance(features_to_frechet(real, fake))}

    return MetricEvaluator(compute=compute, paired=False, needs_data_range=True,
                           windows=lambda config: extractor_windows(extractor, config))


# One evaluator per metric name: the first extractor listed for it (``frd`` = FRD v1, ``radiomics``).
for _metric in dict.fromkeys(names.FRECHET_METRIC_FOR_EXTRACTOR.values()):
    _extractor = next(e for e, m in names.FRECHET_METRIC_FOR_EXTRACTOR.items() if m == _metric)
    EVALUATORS.add(_metric, _frechet_evaluator(_extractor, _metric))


def _nn_accuracy(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.nn_accuracy import nn_accuracy

    ctx.require(names.NN_ACCURACY, 2, "leave-one-out needs a second sample of each set")
    return nn_accuracy(*ctx.features()).to_dict()


def _precision_recall(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.diversity import (
        DEFAULT_K_PRECISION_RECALL,
        precision_recall,
    )

    ctx.require("precision_recall", DEFAULT_K_PRECISION_RECALL + 1, f"k={DEFAULT_K_PRECISION_RECALL} neighbours")
    return precision_recall(*ctx.features()).to_dict()


def _density_coverage(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.diversity import (
        DEFAULT_K_DENSITY_COVERAGE,
        density_coverage,
    )

    ctx.require("density_coverage", DEFAULT_K_DENSITY_COVERAGE + 1, f"k={DEFAULT_K_DENSITY_COVERAGE} neighbours")
    return density_coverage(*ctx.features()).to_dict()


def _moments(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.moments import compare_moments

    comparison = compare_moments(ctx.real.images, ctx.fake.images)
    ctx.artifacts["moments"] = comparison
    return comparison.to_dict()


def _swd(ctx: EvaluationContext) -> dict[str, float]:
    from breastflow.metrics.swd import SWDConfig, sliced_wasserstein_distance

    real, fake = ctx.stacks()
    result = sliced_wasserstein_distance(real, fake, SWDConfig(seed=ctx.config.swd_seed))
    ctx.artifacts["swd"] = result
    return result.to_dict()


def _feature_space_windows(config: EvaluationConfig) -> bool:
    return config.feature_space != PIXELS and extractor_windows(config.feature_space, config)


EVALUATORS.add(names.NN_ACCURACY, MetricEvaluator(_nn_accuracy, paired=False, needs_data_range=False,
                                                  windows=_feature_space_windows))
EVALUATORS.add("precision_recall", MetricEvaluator(_precision_recall, paired=False, needs_data_range=False,
                                                   windows=_feature_space_windows))
EVALUATORS.add("density_coverage", MetricEvaluator(_density_coverage, paired=False, needs_data_range=False,
                                                   windows=_feature_space_windows))
EVALUATORS.add("moments", MetricEvaluator(_moments, paired=False, needs_data_range=False))
EVALUATORS.add(names.SWD, MetricEvaluator(_swd, paired=False, needs_data_range=False))
