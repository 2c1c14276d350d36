"""Evaluate a synthetic image set against a real one: the logic behind ``breastflow evaluate``.

1. :func:`load_image_folder` reads a folder of 8/16-bit grayscale PNGs and
   ``.npy`` arrays (a 2-D array is one image, a 3-D ``(N, H, W)`` stack is
   ``N`` images named ``file.npy[i]``), in sorted file-name order.
2. :func:`evaluate_sets` runs the requested metrics, each looked up by name
   in :data:`EVALUATORS`, and returns one flat dict keyed by
   :mod:`breastflow.metrics.names` plus the objects the report plots.

Paired metrics (``mse, mae, psnr, ssim, ms_ssim, lpips``) need ``paired=True``:
the two folders must then hold the same image names; a name present in one
folder only is an error naming it. Set metrics (``fid_img, fid_rad, frd,
nn_accuracy, precision_recall, density_coverage, moments, swd``) compare the
sets as distributions. Nothing is silently skipped: empty sets, NaNs,
unreadable files, shape mismatches and sets too small for a metric are
errors that name the file or the metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from breastflow.metrics import names
from breastflow.registry import Registry

IMAGE_SUFFIXES = (".png", ".npy")
#: ``feature_space`` value meaning flattened pixels instead of a feature extractor.
PIXELS = "pixels"


class InputError(ValueError):
    """Bad evaluation input (files, pairing, set sizes); the message names the culprit."""


@dataclass(frozen=True)
class ImageSet:
    """Images loaded from one folder or store selection.

    Attributes:
        source: where they came from (folder path or selection string).
        names: one name per image (file name, ``file.npy[i]`` for stacks,
            ``<study>_z<slice:04d>`` for store selections).
        images: ``(H, W)`` arrays in their stored dtype (float64 for per-case scaled selections).
        meta: one row per image (``name``, ``study``, ``slice`` and, for store
            selections, ``vendor``, ``field_strength``, ``lesion_class`` ...), or ``None``.
    """

    source: str
    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    meta: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.images)

    def where(self, name: str) -> str:
        """Where image ``name`` lives, for error messages."""
        return f"{self.source}/{name}" if not self.source.endswith("/") else f"{self.source}{name}"

    def subset(self, index: np.ndarray | list[int]) -> ImageSet:
        """The images at ``index`` (in that order), metadata included."""
        index = [int(i) for i in index]
        meta = None if self.meta is None else self.meta.iloc[index].reset_index(drop=True)
        return ImageSet(source=self.source, names=tuple(self.names[i] for i in index),
                        images=tuple(self.images[i] for i in index), meta=meta)

    def stack(self) -> np.ndarray:
        """All images as one ``(N, H, W)`` array.

        Raises:
            InputError: naming the first image whose shape differs from the first one's.
        """
        first = self.images[0].shape
        for name, img in zip(self.names, self.images, strict=True):
            if img.shape != first:
                raise InputError(f"{self.where(name)}: shape {img.shape} differs from {self.names[0]} {first}; "
                                 "this metric needs equal-size images: pass --resize N (EvaluationConfig.resize)")
        return np.stack(self.images)


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except Exception as err:  # Pillow raises many types for broken files
        raise InputError(f"{path}: unreadable PNG ({err})") from err
    if mode == "L":
        return arr.astype(np.uint8, copy=False)
    if mode.startswith("I;16"):
        return arr.astype(np.uint16)
    if mode == "I":
        if arr.min() < 0 or arr.max() > 65535:
            raise InputError(f"{path}: 32-bit PNG values outside 0..65535")
        return arr.astype(np.uint16)
    raise InputError(f"{path}: PNG mode {mode!r} is not 8/16-bit grayscale")


def _read_npy(path: Path) -> tuple[list[np.ndarray], bool]:
    """Images of a .npy file and whether it was a 3-D stack."""
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError / OSError / EOFError for corrupt files
        raise InputError(f"{path}: unreadable .npy ({err})") from err
    if arr.dtype.kind not in "uif" or arr.ndim not in (2, 3):
        raise InputError(f"{path}: need a numeric 2-D image or 3-D (N, H, W) stack, got {arr.dtype} {arr.shape}")
    return ([arr], False) if arr.ndim == 2 else (list(arr), True)


def load_image_folder(folder: str | Path, what: str = "images") -> ImageSet:
    """Load every PNG / .npy image of ``folder`` in sorted file-name order.

    Args:
        folder: directory holding only image files (dot-files are ignored).
        what: set name for error messages (``"real"``, ``"fake"``).

    Raises:
        InputError: missing folder, a file of another type, an unreadable
            file, NaN / infinite values (naming the file), or no images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{what} folder {folder} does not exist or is not a directory")
    image_names: list[str] = []
    images: list[np.ndarray] = []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        suffix = path.suffix.lower()
        if path.is_dir() or suffix not in IMAGE_SUFFIXES:
            raise InputError(f"{path}: not a {'/'.join(IMAGE_SUFFIXES)} image file; {what} folders must hold only images")
        loaded, is_stack = ([_read_png(path)], False) if suffix == ".png" else _read_npy(path)
        for i, img in enumerate(loaded):
            name = f"{path.name}[{i}]" if is_stack else path.name
            if img.dtype.kind == "f" and not np.isfinite(img).all():
                raise InputError(f"{folder / name}: holds NaN or infinite values")
            image_names.append(name)
            images.append(img)
    if not images:
        raise InputError(f"{what} folder {folder} holds no images")
    return ImageSet(source=str(folder), names=tuple(image_names), images=tuple(images))



class EvaluationConfig(BaseModel):
    """What :func:`evaluate_sets` computes and how.

    Attributes:
        metrics: :data:`EVALUATORS` names; ``None`` = :data:`DEFAULT_PAIRED_METRICS`
            plus :data:`DEFAULT_SET_METRICS` when paired, else the set metrics.
        paired: pair the images by name, or by ``(study, slice)`` when either set
            comes from a store selection (needed by paired metrics).
        data_range: intensity range R; ``None`` = the maximum of the real set when
            either set is a store selection, else 255 for 8-bit and 65535 for
            16-bit integer images (float images need it explicitly).
        feature_space: ``"pixels"`` (flattened) or a feature-extractor name;
            used by ``nn_accuracy``, ``precision_recall`` and ``density_coverage``.
        protocol: preprocessing protocol for feature extractors.
        weights: extractor name (or ``"lpips"``) -> weight file; absent = the
            extractor's default / environment variable.
        device: torch device for paired metrics and feature extraction.
        swd_seed: seed of the SWD's random patches and directions.
        batch_size: images per batch.
        resize: distribution metrics need one image size: every image is resized
            to ``(resize, resize)`` (protocol :data:`RESIZE_PROTOCOL`) before them;
            ``None`` = refuse sets of mixed sizes. Paired metrics always use the
            native size.
        by: fairness groupings (``vendor``, ``field_strength``, ``lesion_class``);
            ``None`` = every one the real set has labels for; ``()`` = none.
        min_group_size: smallest real and fake group a distribution metric is computed on.
        privacy_features: feature extractor of the memorisation check's feature space.
        privacy_quantile: held-out distance quantile below which a synthetic image is "close".
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[str, ...] | None = None
    paired: bool = False
    data_range: float | None = Field(default=None, gt=0)
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

    def resolved_metrics(self) -> tuple[str, ...]:
        if self.metrics is not None:
            return self.metrics
        return (DEFAULT_PAIRED_METRICS + DEFAULT_SET_METRICS) if self.paired else DEFAULT_SET_METRICS


#: How :attr:`EvaluationConfig.resize` resizes (recorded in every result that used it).
RESIZE_PROTOCOL = "bilinear, antialiased, align_corners=False, float64, to (S, S) (aspect ratio not kept)"


def resize_images(images: tuple[np.ndarray, ...] | list[np.ndarray], size: int) -> np.ndarray:
    """Resize ``(H, W)`` images of any sizes to one ``(N, size, size)`` float64 stack (:data:`RESIZE_PROTOCOL`)."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), size, size), dtype=np.float64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(img.shape, []).append(i)
    for shape, index in by_shape.items():
        block = np.stack([np.asarray(images[i], dtype=np.float64) for i in index])
        if shape == (size, size):
            out[index] = block
            continue
        x = torch.from_numpy(block)[:, None]
        out[index] = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                   antialias=True)[:, 0].numpy()
    return out


@dataclass
class EvaluationContext:
    """The two sets plus lazily computed, shared intermediate values."""

    real: ImageSet
    fake: ImageSet
    config: EvaluationConfig
    data_range: float | None
    artifacts: dict[str, object] = field(default_factory=dict)
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

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
            else:
                from breastflow.metrics.features import extract_features

                for key, images in (("real_features", real), ("fake_features", fake)):
                    self._cache[key] = extract_features(
                        images, space, self.config.protocol, self.config.batch_size, self.config.device,
                        self.config.weights.get(space), self.data_range,
                    )
        return self._cache["real_features"], self._cache["fake_features"]

    def subset(self, real_index: np.ndarray, fake_index: np.ndarray) -> EvaluationContext:
        """A context on some of the images, reusing the stacks and features already computed."""
        sub = EvaluationContext(real=self.real.subset(real_index), fake=self.fake.subset(fake_index),
                                config=self.config, data_range=self.data_range)
        for key, value in self._cache.items():
            sub._cache[key] = value[real_index] if key.startswith("real") else value[fake_index]
        return sub

    def require(self, metric: str, n_min: int, why: str) -> None:
        for what, s in (("real", self.real), ("fake", self.fake)):
            if len(s) < n_min:
                raise InputError(f"{metric} needs at least {n_min} {what} images ({why}); {s.source} has {len(s)}")


@dataclass(frozen=True)
class MetricEvaluator:
    """A registered evaluation metric: flat values from an :class:`EvaluationContext`."""

    compute: Callable[[EvaluationContext], dict[str, float]]
    paired: bool
    needs_data_range: bool


EVALUATORS: Registry[MetricEvaluator] = Registry("evaluation metric")
DEFAULT_PAIRED_METRICS: tuple[str, ...] = (names.MSE, names.MAE, names.PSNR, names.SSIM)
DEFAULT_SET_METRICS: tuple[str, ...] = ("moments", names.SWD, names.NN_ACCURACY)


def _per_shape(ctx: EvaluationContext, per_pair: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """``per_pair(fake, real)`` on each group of equal-size pairs, reassembled in pair order: ``(N,)``."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(ctx.real.images):
        by_shape.setdefault(img.shape, []).append(i)
    out = np.empty(len(ctx.real), dtype=np.float64)
    for index in by_shape.values():
        real = np.stack([ctx.real.images[i] for i in index])
        fake = np.stack([ctx.fake.images[i] for i in index])
        out[index] = per_pair(fake, real)
    return out


def _paired_evaluator(metric: str) -> MetricEvaluator:
    def compute(ctx: EvaluationContext) -> dict[str, float]:
        from breastflow.metrics.paired import paired_metrics

        values = _per_shape(ctx, lambda fake, real: paired_metrics(
            fake, real, ctx.data_range, metrics=[metric], device=ctx.config.device,
            batch_size=ctx.config.batch_size).per_case[metric])
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


EVALUATORS.add(names.LPIPS, MetricEvaluator(compute=_lpips, paired=True, needs_data_range=True))


def _frechet_evaluator(extractor: str, metric: str) -> MetricEvaluator:
    def compute(ctx: EvaluationContext) -> dict[str, float]:
        from breastflow.metrics.frechet import frechet_distance

        ctx.require(metric, 2, "a covariance estimate")
        real, fake = ctx.stacks()
        value = frechet_distance(real, fake, extractor=extractor, protocol=ctx.config.protocol, data_range=ctx.data_range,
                                 batch_size=ctx.config.batch_size, device=ctx.config.device,
                                 weights=ctx.config.weights.get(extractor))
        return {metric: value}

    return MetricEvaluator(compute=compute, paired=False, needs_data_range=True)


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


EVALUATORS.add(names.NN_ACCURACY, MetricEvaluator(_nn_accuracy, paired=False, needs_data_range=False))
EVALUATORS.add("precision_recall", MetricEvaluator(_precision_recall, paired=False, needs_data_range=False))
EVALUATORS.add("density_coverage", MetricEvaluator(_density_coverage, paired=False, needs_data_range=False))
EVALUATORS.add("moments", MetricEvaluator(_moments, paired=False, needs_data_range=False))
EVALUATORS.add(names.SWD, MetricEvaluator(_swd, paired=False, needs_data_range=False))


@dataclass(frozen=True)
class EvaluationResult:
    """Flat metric values plus what the report plots.

    Attributes:
        values: flat dict keyed by :mod:`breastflow.metrics.names` (and derived keys).
        artifacts: ``"moments"`` -> MomentsComparison, ``"swd"`` -> SWDResult,
            ``"paired_per_case"`` -> metric -> ``(N,)`` array, ``"privacy"`` ->
            :class:`breastflow.metrics.evaluate_privacy.PrivacyCheck`, when computed.
        config: the configuration used.
        real_names: image names of the real set (the pairing order when paired).
        fake_names: image names of the fake set.
        sources: ``"real"``, ``"fake"`` (and ``"train"``, ``"holdout"``) -> folder or selection string.
        notes: what the evaluation decided on the user's behalf (data range, resizing, dropped stack slices).
        fairness: tidy table (:mod:`breastflow.metrics.evaluate_groups`), or ``None``.
        cases: one row per real image: its metadata and per-case paired values, or ``None``.
    """

    values: dict[str, float]
    artifacts: dict[str, object]
    config: EvaluationConfig
    real_names: tuple[str, ...]
    fake_names: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    fairness: pd.DataFrame | None = None
    cases: pd.DataFrame | None = None


def evaluate_sets(real: ImageSet, fake: ImageSet, config: EvaluationConfig, train: ImageSet | None = None,
                  holdout: ImageSet | None = None) -> EvaluationResult:
    """Compute the configured metrics of ``fake`` against ``real``, per group and the privacy check.

    Args:
        real, fake: the two sets (folders or store selections).
        config: what to compute.
        train, holdout: real images the generator was / was not trained on; both
            given = the memorisation check (:mod:`breastflow.metrics.evaluate_privacy`).

    Raises:
        RegistryError: an unknown metric name (nearest names suggested).
        InputError: a paired metric without ``paired``, mismatched pairs, sets
            too small, an undeterminable data range, images of other sizes,
            a fairness grouping without labels, only one of train / holdout.
    """
    from breastflow.metrics.evaluate_groups import (
        breakdown_by_group,
        case_table,
        resolve_groupings,
    )
    from breastflow.metrics.pairing import inherit_labels, pair_sets, resolve_data_range

    metric_names = config.resolved_metrics()
    if not metric_names:
        raise InputError("no metrics requested")
    if (train is None) != (holdout is None):
        raise InputError("the memorisation check needs both a training set (--train) and a held-out set (--holdout)")
    evaluators = {m: EVALUATORS.get(m) for m in metric_names}
    paired_needed = [m for m, e in evaluators.items() if e.paired]
    if paired_needed and not config.paired:
        raise InputError(f"metric(s) {paired_needed} compare image pairs; pass --paired (folders with the same file names)")
    notes: list[str] = []
    fake = pair_sets(real, fake, notes) if config.paired else inherit_labels(fake, real)
    data_range = resolve_data_range(real, fake, config, any(e.needs_data_range for e in evaluators.values()), notes)
    if config.resize is not None:
        notes.append(f"distribution metrics on images resized to {config.resize}x{config.resize} ({RESIZE_PROTOCOL}); "
                     "paired metrics at native size")
    groupings = resolve_groupings(config.by, real, fake)
    ctx = EvaluationContext(real=real, fake=fake, config=config, data_range=data_range)
    values: dict[str, float] = {"n_real": float(len(real)), "n_fake": float(len(fake))}
    if data_range is not None:
        values["data_range"] = data_range
    by_metric: dict[str, dict[str, float]] = {}
    for metric, evaluator in evaluators.items():
        by_metric[metric] = evaluator.compute(ctx)
        values.update(by_metric[metric])
    fairness = None
    if groupings:
        set_metrics = {m: e for m, e in evaluators.items() if not e.paired}
        fairness = breakdown_by_group(ctx, set_metrics, groupings, by_metric)
    sources = {"real": real.source, "fake": fake.source}
    if train is not None and holdout is not None:
        from breastflow.metrics.evaluate_privacy import privacy_check

        check = privacy_check(train, holdout, fake, config, data_range, ctx)
        ctx.artifacts["privacy"] = check
        values.update(check.values())
        sources.update(train=train.source, holdout=holdout.source)
    return EvaluationResult(values=values, artifacts=ctx.artifacts, config=config, real_names=real.names,
                            fake_names=fake.names, sources=sources, notes=tuple(notes), fairness=fairness,
                            cases=case_table(ctx))


def evaluate_folders(real_dir: str | Path, fake_dir: str | Path, config: EvaluationConfig) -> EvaluationResult:
    """Load both folders and :func:`evaluate_sets`."""
    return evaluate_sets(load_image_folder(real_dir, "real"), load_image_folder(fake_dir, "fake"), config)


def evaluate_inputs(real: str, fake: str, config: EvaluationConfig, train: str | None = None,
                    holdout: str | None = None) -> EvaluationResult:
    """Load folders or store selections (:func:`breastflow.metrics.selection.load_input`) and :func:`evaluate_sets`.

    Raises:
        InputError: see :func:`evaluate_sets` and :func:`breastflow.metrics.selection.load_selection`.
    """
    from breastflow.metrics.selection import load_input

    if (train is None) != (holdout is None):
        raise InputError("the memorisation check needs both --train and --holdout")
    return evaluate_sets(load_input(real, "real"), load_input(fake, "fake"), config,
                         None if train is None else load_input(train, "train"),
                         None if holdout is None else load_input(holdout, "holdout"))
