"""The demo's Pix2PixHD run: :class:`DemoTraining` (its settings) and :func:`demo_run_name` (its name).

Step 6 of :mod:`breastflow.demo` trains with these settings through the
project's own engine; the run name is a content key of the settings and the
data, so a second demo in the same folder continues or reuses the same run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breastflow.train.config import TrainRun

#: the phase the demo's generator synthesises
POST1 = "post_1"


@dataclass(frozen=True)
class DemoTraining:
    """The demo's Pix2PixHD run: every setting in one place (the lead tunes the defaults here).

    Sized so that training takes a few minutes on 2 CPU cores (about 12 s per epoch
    of 10 training studies plus about 35 s for Ray's start and stop, machine load
    4-5); not a setting to expect a good generator from (``docs/train_results.md``). Paper 003's
    objective (eq. 3: LSGAN + feature matching + VGG19 perceptual) with two
    changes, both recorded in the run's config: the perceptual term is off (the
    VGG19 weights cannot be obtained offline) and pix2pix's pixel L1 term
    (Isola et al. 2017, weight ``lambda_l1``) is *added* to eq. 3 as the
    reconstruction signal that replaces it.

    Attributes:
        model: registry name of the family.
        ngf, ndf, n_downsample_global, n_blocks_global: Pix2PixHD network sizes
            (:class:`breastflow.models.pix2pixhd.config.Pix2PixHDConfig`). One
            downsampling (pix2pixHD's ``--n_downsample_global``; stock 4): on 64-96 px
            slices three downsamplings squeeze the image through a 8-12 px bottleneck
            and the generator does not even reach the baselines' whole-image MAE in 8
            CPU minutes (0.053 with L1 alone), one does (0.038-0.044;
            ``docs/train_results.md`` runs 12-16).
        perceptual: ``"off"``; ``"on"`` would need a VGG19 weight file, which the demo does not configure.
        lambda_l1: weight of the added pixel L1 term (0 = paper 003's objective).
        lr: Adam learning rate (betas 0.5, 0.999 as the paper).
        epochs: epochs at constant ``lr``; decay_epochs: epochs of linear decay to 0 after them.
        checkpoint_every: checkpoint every K epochs (and after the last).
        image_size: every slice resized to ``(S, S)`` for training and generation (the
            ``paired_phases`` spec): the tiny phantom mixes 64, 80 and 96 pixel grids, and
            one size is what lets the engine batch slices and draw its sample grid. 96
            (the largest grid: nothing is downsampled) scored better in 13 epochs than 64
            in 28 on every figure (one split: held-out lesion-box MAE 0.34 vs 0.38, SSIM 0.76 vs 0.70).
        batch_size: slices per step and worker.
        workers: Ray Train workers; gpu: one GPU per worker (the demo trains on CPU).
        seed: training seed.
    """

    model: str = "pix2pixhd"
    ngf: int = 16
    ndf: int = 16
    n_downsample_global: int = 1
    n_blocks_global: int = 6
    perceptual: str = "off"
    lambda_l1: float = 100.0
    lr: float = 2e-4
    epochs: int = 12
    decay_epochs: int = 4
    checkpoint_every: int = 4
    image_size: int | None = 96
    batch_size: int = 4
    workers: int = 1
    gpu: bool = False
    seed: int = 0

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run (0: the model step is skipped)."""
        return self.epochs + self.decay_epochs

    def with_total_epochs(self, total: int) -> DemoTraining:
        """The same settings over ``total`` epochs, keeping the share of decay epochs (rounded down).

        Raises:
            ValueError: ``total`` < 0.
        """
        if total < 0:
            raise ValueError(f"train epochs must be >= 0, got {total}")
        decay = total * self.decay_epochs // self.total_epochs if self.total_epochs else 0
        return replace(self, epochs=total - decay, decay_epochs=decay)

    def overrides(self) -> list[str]:
        """The settings as ``breastflow train --set`` items."""
        items = [f"model.ngf={self.ngf}", f"model.ndf={self.ndf}",
                 f"model.n_downsample_global={self.n_downsample_global}",
                 f"model.n_blocks_global={self.n_blocks_global}", f"perceptual={self.perceptual}",
                 f"model.lambda_l1={self.lambda_l1}", f"lr={self.lr}", f"epochs={self.epochs}",
                 f"decay_epochs={self.decay_epochs}", f"checkpoint_every={self.checkpoint_every}",
                 f"batch_size={self.batch_size}", f"seed={self.seed}", f"targets={json.dumps([POST1])}"]
        if self.image_size is not None:
            items.append(f"image_size={self.image_size}")
        return items

    def train_run(self, store: str) -> TrainRun:
        """The validated run on ``store``, named after what makes its checkpoints (:func:`demo_run_name`).

        Raises:
            breastflow.data.datasets.DatasetError: the store cannot give the training data.
            pydantic.ValidationError, breastflow.train.settings.SettingsError: a bad setting.
        """
        from breastflow.train.settings import build_train_run

        draft = build_train_run(self.model, store, overrides=self.overrides(), run="demo", workers=self.workers,
                                gpu=self.gpu)
        return draft.model_copy(update={"run": demo_run_name(draft)})


def demo_run_name(run: TrainRun) -> str:
    """``demo-<8 hex>``: a hash of what the checkpoints depend on, except the epoch schedule.

    The same settings and data give the same name, so a second demo continues (or
    reuses) the run; more ``--train-epochs`` lengthen it; other settings or another
    cohort start a run of their own instead of failing on a mismatched checkpoint.
    """
    from breastflow.data.datasets import build_dataset

    version = build_dataset(run.dataset, run.store, run.dataset_spec).version
    options = {k: v for k, v in run.model_options.items() if k not in ("epochs", "decay_epochs")}
    key = {"model": run.model, "options": options, "dataset": run.dataset, "spec": run.dataset_spec,
           "batch_size": run.batch_size, "workers": run.workers, "gpu": run.gpu, "seed": run.seed,
           "version": version}
    return "demo-" + hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
