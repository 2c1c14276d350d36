"""The training flow: a GAN family on a store, trained by Ray Train, followed and published in Prefect.

The flow takes one typed parameter, :class:`TrainParameters`, so the Prefect
UI shows a form (model, store, the ``--set`` keys of ``breastflow train``,
workers, GPU, run name, optional generation). It trains on the Ray cluster at
``RAY_ADDRESS`` (the worker's environment) or on a local Ray instance, logs
each epoch's losses while the run trains, and publishes artifacts: the run
summary (final losses, checkpoint URIs, Ray dashboard link) and the last sample
grid. With ``generate_split`` set, the last checkpoint then generates that split
into ``synthetic/<name>/``.

Run locally::

    python -m flows.train template /data/store

or deploy ``train-pix2pixhd`` from ``deployments/prefect.yaml`` and start it from the UI.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from prefect import flow, get_run_logger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from breastflow.generate.config import GenerateConfig, GenerateSplit
from breastflow.models import MODELS, model_name
from breastflow.models.enums import Perceptual
from breastflow.registry import RegistryError
from breastflow.train.config import TrainRun
from breastflow.train.settings import SHORT_KEYS, build_train_run, parse_overrides
from tasks.train import (
    generate_task,
    publish_generate_task,
    publish_training_task,
    train_task,
)

#: the worker host's VGG19 state dict (pix2pixhd's perceptual loss) when the form leaves ``vgg_weights`` empty
VGG_WEIGHTS_ENV = "BREASTFLOW_VGG19_WEIGHTS"
#: form fields passed on as ``--set`` keys of the same name
SET_FIELDS = ("epochs", "decay_epochs", "checkpoint_every", "image_size", "batch_size", "perceptual", "vgg_weights")


class TrainParameters(BaseModel):
    """The training form: what ``breastflow train MODEL STORE --set ... --workers --gpu --run`` takes.

    Empty (None) settings keep the model's and the run's defaults.

    Attributes:
        model: registry name of the GAN family (``pix2pixhd``, ``template``); a typo fails with the nearest names.
        store: the store (local path on the worker's host, or ``s3://bucket/prefix``; credentials from
            the worker's environment).
        run: run name; starting the same run again continues it from its last checkpoint.
        epochs: constant-learning-rate epochs (``--set epochs``).
        decay_epochs: epochs of linear decay to 0 after those (``--set decay_epochs``).
        checkpoint_every: save a checkpoint every K epochs, and after the last (``--set checkpoint_every``).
        image_size: slices resized to this square size (``--set image_size``).
        batch_size: batch size per worker (``--set batch_size``).
        perceptual: VGG19 perceptual loss on/off (``--set perceptual``; pix2pixhd only).
        vgg_weights: VGG19 state dict on the worker's host (``--set vgg_weights``); empty:
            ``BREASTFLOW_VGG19_WEIGHTS`` from the worker's environment, when set.
        overrides: further ``--set`` items, ``key=value`` (``model.ngf=32``, ``seed=3``).
        workers: Ray Train workers.
        gpu: one GPU per worker (bf16, channels-last).
        generate_split: after training, generate this split from the last checkpoint (empty: no generation).
        generate_name: synthetic set name (empty: ``<model>-<run>-e<epoch>``).
        follow_interval_s: seconds between looks at the run's ``losses.csv`` while it trains.
        select_after: after training, run the selection flow on the run's checkpoints
            (:func:`flows.select.select_flow`: Ray Tune fan-out, ``selected.json``, synthesis report).
        select_metrics: the selection's criterion metrics (empty: the family's default).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), use_enum_values=False)

    model: str = Field("pix2pixhd", description="GAN family: " + ", ".join(MODELS.names()))
    store: str = Field(min_length=1, description="store: local path on the worker's host or s3://bucket/prefix")
    run: str = Field("default", description="run name; the same name again continues the run")
    epochs: int | None = Field(None, ge=0, description="constant-LR epochs (--set epochs)")
    decay_epochs: int | None = Field(None, ge=0, description="linear-decay epochs (--set decay_epochs)")
    checkpoint_every: int | None = Field(None, ge=1, description="checkpoint every K epochs")
    image_size: int | None = Field(None, ge=8, description="square slice size for training")
    batch_size: int | None = Field(None, ge=1, description="batch size per worker")
    perceptual: Perceptual | None = Field(None, description="VGG19 perceptual loss (pix2pixhd)")
    vgg_weights: str | None = Field(None, description=f"VGG19 state dict on the worker; empty: ${VGG_WEIGHTS_ENV}")
    overrides: list[str] = Field(default_factory=list, description="more --set items, key=value")
    workers: int = Field(1, ge=1, description="Ray Train workers")
    gpu: bool = Field(False, description="one GPU per worker")
    generate_split: GenerateSplit | None = Field(None, description="generate this split after training")
    generate_name: str | None = Field(None, description="synthetic set name")
    follow_interval_s: float = Field(10.0, gt=0, description="seconds between loss updates in the log")
    select_after: bool = Field(False, description="then select the best checkpoint (flows.select) and report")
    select_metrics: list[str] | None = Field(None, description="selection metrics; empty: the family's default")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return model_name(value)

    @model_validator(mode="after")
    def _valid_run(self) -> TrainParameters:
        self.train_run()
        return self

    def set_items(self) -> list[str]:
        """The ``--set`` items of this form: ``overrides`` then the typed fields that are filled in.

        Raises:
            ValueError: a key given both as a field and in ``overrides``, a setting the model
                lacks, or a malformed override.
        """
        config_class = MODELS.get(self.model).config_class
        given = {(section, key) for section, values in parse_overrides(self.overrides).items() for key in values}
        typed = {name: getattr(self, name) for name in SET_FIELDS if getattr(self, name) is not None}
        foreign = sorted(name for name in typed
                         if SHORT_KEYS[name][0] == "model" and name not in config_class.model_fields)
        if foreign:
            raise ValueError(f"model {self.model!r} has no setting {foreign} (its settings: "
                             f"{', '.join(config_class.model_fields)}); leave it empty")
        both = sorted(name for name in typed if SHORT_KEYS[name] in given)
        if both:
            raise ValueError(f"{both} given both as form fields and in overrides; keep one")
        vgg = SHORT_KEYS["vgg_weights"]
        if os.environ.get(VGG_WEIGHTS_ENV) and "vgg_weights" not in typed and vgg not in given \
                and vgg[1] in config_class.model_fields and self.perceptual is not Perceptual.OFF:
            typed["vgg_weights"] = os.environ[VGG_WEIGHTS_ENV]
        items = list(self.overrides)
        for name, value in typed.items():
            text = value.value if isinstance(value, Perceptual) else value if isinstance(value, str) else json.dumps(value)
            items.append(f"{name}={text}")
        return items

    def train_run(self) -> TrainRun:
        """The validated :class:`TrainRun` (what ``breastflow train`` builds from the same settings).

        Raises:
            ValueError: a bad ``--set`` item or setting (``SettingsError``, pydantic ``ValidationError``),
                or an unknown model/dataset (nearest names).
        """
        try:
            return build_train_run(self.model, self.store, None, self.set_items(), workers=self.workers,
                                   gpu=self.gpu, run=self.run)
        except RegistryError as err:
            raise ValueError(str(err)) from err

    def generate_config(self, checkpoint: str) -> GenerateConfig | None:
        """What to generate from ``checkpoint`` after training; None when ``generate_split`` is empty."""
        if self.generate_split is None:
            return None
        return GenerateConfig(checkpoint=checkpoint, store=self.store, split=self.generate_split,
                              name=self.generate_name, model=self.model, device="cuda" if self.gpu else "cpu")


@flow(name="breastflow-train", log_prints=False)
def train_flow(params: TrainParameters) -> dict[str, Any]:
    """Train a GAN family on Ray Train, publish losses, checkpoints, the dashboard link and the sample grid;
    with ``select_after``, chain into the selection flow.

    Args:
        params: the form (:class:`TrainParameters`).

    Returns:
        ``{"run", "run_uri", "checkpoints", "epochs", "dataset_version", "metrics", "dashboard", "synthetic",
        "selection"}`` (``selection``: the selection flow's summary with ``select_after``, else None).

    Raises:
        What ``breastflow train`` raises (bad settings, missing weights or phase, unreachable
        ``RAY_ADDRESS``, a run that exists with other settings, workers failing too often).
    """
    logger = get_run_logger()
    run = params.train_run()
    logger.info("training %s run %s on %s: %d epochs, %d worker(s)%s", run.model, run.run, run.store,
                run.total_epochs, run.workers, ", GPU" if run.gpu else "")
    followed = train_task(run, params.follow_interval_s)
    publish_training_task(followed)
    result = followed.result
    summary = {"run": result.run, "run_uri": result.run_uri, "checkpoints": result.checkpoints,
               "epochs": result.epochs, "dataset_version": result.dataset_version, "metrics": result.metrics,
               "dashboard": followed.dashboard_url, "synthetic": None}
    config = params.generate_config(result.checkpoints[-1]) if result.checkpoints else None
    if config is not None:
        generated = generate_task(config)
        publish_generate_task(generated, params.store)
        summary["synthetic"] = generated.name
    summary["selection"] = None
    if params.select_after and result.checkpoints:
        from flows.select import SelectParameters, select_flow

        summary["selection"] = select_flow(SelectParameters(store=params.store, model=params.model, run=result.run,
                                                            metrics=params.select_metrics, gpu=params.gpu))
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m flows.train MODEL STORE")
    print(json.dumps(train_flow(TrainParameters(model=sys.argv[1], store=sys.argv[2])), indent=2))
