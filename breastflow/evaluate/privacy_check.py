"""The memorisation check in ``evaluate``: synthetic vs held-out distance to the training set.

``evaluate REAL FAKE --train SEL --holdout SEL`` runs
:func:`breastflow.metrics.privacy.memorisation_distances` twice:

* **pixels**: every image of the three sets at one size (``--resize`` or equal
  sizes), divided by the evaluation's data range and flattened; the distance
  is the Euclidean norm of the difference (``sqrt(H W)`` times the RMS difference);
* **features**: the :attr:`EvaluationConfig.privacy_features` extractor's
  features of the same images (default ``inception``; ``pixels`` = pixel space only).

The result's values are ``privacy_close_share_<space>`` (share of synthetic
images closer to a training image than the ``privacy_quantile`` of the held-out
images' distances; about the quantile when nothing is copied), the threshold
and both median distances; the report shows the closest synthetic/training
pairs of each space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breastflow.data.image_sets import ImageSet, InputError, resize_images
from breastflow.evaluate.config import PIXELS, EvaluationConfig
from breastflow.evaluate.evaluators import EvaluationContext
from breastflow.metrics.privacy import (
    DistanceSpace,
    PrivacyResult,
    memorisation_distances,
    plot_closest_pairs,
)

N_CLOSEST = 8


@dataclass(frozen=True)
class PrivacyCheck:
    """Both spaces' results plus what the closest-pairs figures show.

    Attributes:
        results: one :class:`PrivacyResult` per space measured.
        extractor: feature extractor of the feature space (``None`` when skipped).
        synthetic_images: ``(M, H, W)`` synthetic images as compared.
        train_images: ``(N, H, W)`` training images as compared.
        synthetic_names, train_names: their names (index order of the results).
        n_holdout: held-out images.
    """

    results: tuple[PrivacyResult, ...]
    extractor: str | None
    synthetic_images: np.ndarray
    train_images: np.ndarray
    synthetic_names: tuple[str, ...]
    train_names: tuple[str, ...]
    n_holdout: int

    def values(self) -> dict[str, float]:
        """Flat values of every space, plus the set sizes."""
        out = {"privacy_n_train": float(len(self.train_names)), "privacy_n_holdout": float(self.n_holdout)}
        for result in self.results:
            out.update(result.to_dict())
        return out

    def closest_pairs(self, n: int = N_CLOSEST) -> list[dict[str, object]]:
        """The ``n`` closest synthetic/training pairs of each space, by image name."""
        return [{"space": r.space.value, "synthetic": self.synthetic_names[i], "train": self.train_names[j],
                 "distance": d, "close": bool(r.close[i])}
                for r in self.results for i, j, d in r.closest_pairs(n)]

    def plot(self, out_dir: str | Path) -> list[Path]:
        """Write ``privacy_<space>.png`` (closest pairs) per space into ``out_dir``."""
        return [plot_closest_pairs(r, self.synthetic_images, self.train_images,
                                   Path(out_dir) / f"privacy_{r.space.value}.png", N_CLOSEST)
                for r in self.results]


def _stack(images: ImageSet, size: int | None, what: str, shape: tuple[int, ...] | None) -> np.ndarray:
    if size is not None:
        return resize_images(images.images, size)
    stack = images.stack()
    if shape is not None and stack.shape[1:] != shape:
        raise InputError(f"memorisation check: {what} images {stack.shape[1:]} differ in size from the synthetic "
                         f"images {shape}; pass --resize N")
    return stack.astype(np.float64)


def privacy_check(train: ImageSet, holdout: ImageSet, fake: ImageSet, config: EvaluationConfig,
                  data_range: float | None, ctx: EvaluationContext) -> PrivacyCheck:
    """Run the memorisation check in pixel and feature space.

    Args:
        train: images the generator was trained on; holdout: real images it never saw.
        fake: the synthetic set (as paired / labelled by the evaluation).
        config: the evaluation's configuration (resize, extractor, quantile, device).
        data_range: the evaluation's intensity range (pixel distances are divided by it).
        ctx: the evaluation context (its synthetic stack is reused).

    Raises:
        InputError: sets of other sizes without ``resize``, empty sets, NaNs.
    """
    synthetic = ctx.stacks()[1].astype(np.float64)
    shape = synthetic.shape[1:]
    train_stack = _stack(train, config.resize, f"training ({train.source})", shape)
    holdout_stack = _stack(holdout, config.resize, f"held-out ({holdout.source})", shape)
    scale = float(data_range) if data_range else 1.0
    flat = [s.reshape(len(s), -1) / scale for s in (train_stack, holdout_stack, synthetic)]
    try:
        results = [memorisation_distances(*flat, space=DistanceSpace.PIXELS, quantile=config.privacy_quantile)]
        extractor = None if config.privacy_features == PIXELS else config.privacy_features
        if extractor is not None:
            from breastflow.metrics.features import extract_features

            feats = [extract_features(s, extractor, config.protocol, config.batch_size, config.device,
                                      config.weights.get(extractor), data_range)
                     for s in (train_stack, holdout_stack, synthetic)]
            results.append(memorisation_distances(*feats, space=DistanceSpace.FEATURES,
                                                  quantile=config.privacy_quantile))
    except ValueError as err:
        raise InputError(f"memorisation check: {err}") from err
    return PrivacyCheck(results=tuple(results), extractor=extractor, synthetic_images=synthetic,
                        train_images=train_stack, synthetic_names=fake.names, train_names=train.names,
                        n_holdout=len(holdout))
