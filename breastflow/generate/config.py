"""Typed request (:class:`GenerateConfig`) and result (:class:`GenerateResult`) of ``breastflow generate``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.store import layout
from breastflow.store.splits import Split


class GenerateSplit(str, Enum):
    """Which studies are generated: one patient-level split of the catalog, or all of them."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"
    ALL = "all"

    def splits(self) -> tuple[Split, ...]:
        """The catalog splits this choice covers."""
        return tuple(Split) if self is GenerateSplit.ALL else (Split(self.value),)


class GenerateConfig(BaseModel):
    """One generation run.

    Attributes:
        checkpoint: checkpoint folder or its ``state.pt`` (local path or ``s3://`` URL).
        store: the store the studies are read from and the synthetic set written to.
        split: studies to generate (:class:`GenerateSplit`).
        name: synthetic set name (``synthetic/<name>/``); ``None``: ``<model>-<run>-e<epoch>``.
        batch: axial slices per generator call.
        model: registry name the checkpoint must be of (``None``: any image-to-image family).
        device: torch device (``cpu``, ``cuda:0``).
        nifti_dir: also export every synthetic volume as NIfTI here (``None``: no export).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    checkpoint: str = Field(min_length=1)
    store: str = Field(min_length=1)
    split: GenerateSplit = GenerateSplit.TEST
    name: str | None = None
    batch: int = Field(8, ge=1)
    model: str | None = None
    device: str = "cpu"
    nifti_dir: Path | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else layout.check_name(value, "synthetic set name (--out)")


class GenerateResult(BaseModel):
    """What a generation run wrote.

    Attributes:
        name: the synthetic set; uri: its folder (``<store>/synthetic/<name>``).
        series: the series roles written (``post_1`` or ``post_1..post_3`` for a joint model).
        studies: the studies generated, in order.
        slices: axial slices generated (per series).
        checkpoint, model, epoch, dataset_version: provenance of the generator.
        nifti: NIfTI files written (empty without ``nifti_dir``).
    """

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    name: str
    uri: str
    series: list[str]
    studies: list[str]
    slices: int
    checkpoint: str
    model: str
    epoch: int
    dataset_version: str
    nifti: list[str] = Field(default_factory=list)
