"""The typed settings of one training run (:class:`TrainRun`) and what a run returns (:class:`TrainResult`).

A ``TrainRun`` is validated once (model config through the family's pydantic
class, dataset spec through the dataset family's spec) and saved as
``train_run.json`` beside the run's checkpoints
(``<store>/checkpoints/<model>/<run>/``) and inside every checkpoint. Only its
JSON data travels to Ray workers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from breastflow.store import layout
from breastflow.store.fs import StoreLocation

RUN_FILE = "train_run.json"
LOSSES_FILE = "losses.csv"


class TrainRun(BaseModel):
    """Everything that defines one training run.

    Attributes:
        model: registry name of the GAN family (``pix2pixhd``, ``template``).
        model_options: the family's config fields (validated and completed with defaults);
            the epoch schedule (``epochs`` + ``decay_epochs``) lives here.
        dataset: registry name of the dataset family (``paired_phases``).
        dataset_spec: the dataset family's spec fields (validated and completed).
        store: the store URL (local path or ``s3://bucket/prefix``).
        run: run name; the checkpoints go to ``<store>/checkpoints/<model>/<run>/``.
            Starting a run of the same name again continues it from its last checkpoint.
        checkpoint_every: save every K epochs (and always after the last one).
        workers: Ray Train workers (data-parallel ranks).
        gpu: one GPU per worker (bf16 autocast and channels-last); CPU otherwise (fp32, gloo).
        batch_size: batch size per worker.
        loader_workers: DataLoader worker processes per Ray worker.
        seed: base seed; rank ``r`` seeds with ``seed + r``.
        compile: wrap the networks with ``torch.compile``.
        max_failures: worker-group restarts Ray Train makes after a failure (each resumes
            from the last checkpoint).
        samples: images shown in each checkpoint's sample grid.
        validate_every: every K epochs (and after the last one) rank 0 reports ``val_mae`` and
            ``val_psnr`` of the generator on a fixed subset of the store's ``val`` split
            (:mod:`breastflow.train.validation`; paired image-to-image datasets); 0 = off.
        validation_items: size of that fixed ``val`` subset (slices).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model: str
    model_options: dict[str, Any] = Field(default_factory=dict)
    dataset: str = "paired_phases"
    dataset_spec: dict[str, Any] = Field(default_factory=dict)
    store: str
    run: str = "default"
    checkpoint_every: int = Field(1, ge=1)
    workers: int = Field(1, ge=1)
    gpu: bool = False
    batch_size: int = Field(1, ge=1)
    loader_workers: int = Field(0, ge=0)
    seed: int = 0
    compile: bool = False
    max_failures: int = Field(2, ge=0)
    samples: int = Field(4, ge=1, le=16)
    validate_every: int = Field(0, ge=0)
    validation_items: int = Field(8, ge=1, le=256)

    @field_validator("run")
    @classmethod
    def _run_name(cls, value: str) -> str:
        return layout.check_name(value, "run name")

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return StoreLocation.from_url(value).url

    @model_validator(mode="after")
    def _validate_parts(self) -> TrainRun:
        from breastflow.data.datasets import DATASETS
        from breastflow.models import MODELS, validate_config

        name = MODELS.get(self.model).name  # unknown names fail with the nearest ones
        config = validate_config(name, self.model_options).model_dump(mode="json")
        spec_type = DATASETS.get(self.dataset).spec_type
        spec = spec_type.model_validate(self.dataset_spec).model_dump(mode="json")
        object.__setattr__(self, "model", name)
        object.__setattr__(self, "model_options", config)
        object.__setattr__(self, "dataset_spec", spec)
        return self

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run (the model config's ``epochs + decay_epochs``)."""
        from breastflow.models import validate_config

        return validate_config(self.model, self.model_options).total_epochs

    @property
    def run_dir(self) -> str:
        """The run's folder relative to the store root: ``checkpoints/<model>/<run>``."""
        return layout.checkpoint_dir(self.model, self.run)

    @property
    def run_uri(self) -> str:
        """The run's folder as a URL (``s3://...``) or an absolute local path."""
        return StoreLocation.from_url(self.store).join(self.run_dir)

    @property
    def storage_path(self) -> str:
        """Ray ``RunConfig.storage_path``: ``<store>/checkpoints/<model>`` (Ray appends the run name)."""
        return StoreLocation.from_url(self.store).join(layout.CHECKPOINTS, self.model)


class TrainResult(BaseModel):
    """What :func:`breastflow.train.launch.launch_training` returns (and ``breastflow train --json`` prints).

    Attributes:
        run: the run name.
        run_uri: the run's folder.
        checkpoints: every checkpoint folder of the run, oldest epoch first.
        epochs: epochs completed (the last checkpoint's).
        dataset_version: the version of the data trained on.
        metrics: the last reported metrics (mean losses of the last epoch, ``epoch``, ``step``).
    """

    model_config = ConfigDict(frozen=True)

    run: str
    run_uri: str
    checkpoints: list[str]
    epochs: int
    dataset_version: str
    metrics: dict[str, Any] = Field(default_factory=dict)
