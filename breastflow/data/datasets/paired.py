"""``paired_phases``: pre-contrast -> post-contrast axial slice pairs (paper 003, Pix2PixHD).

Each item is one axial slice ``z`` of one study:

* ``IMAGE``: ``(1, H, W)`` float32 in ``[-1, 1]``, the ``source`` series (``pre``);
* ``TARGET``: ``(K, H, W)`` float32 in ``[-1, 1]``, the ``targets`` series in order:
  ``("post_1",)`` for pre -> post_k (paper 003 sec. 4.1-4.3), ``("post_1", "post_2",
  "post_3")`` for the joint multi-phase model (sec. 4.4);
* ``MASK``: ``(1, H, W)`` uint8 lesion labels from ``masks/lesions`` (0 background,
  ``k`` = lesion id); all zeros when the study has no stored mask;
* ``KEY``: ``"<study>/z<k>"`` (pseudonym and slice index: PHI-free).

All phases of a study share one intensity unit (:mod:`breastflow.data.intensity`),
so the network sees the enhancement. Slices: every axial slice or the lesion
slices plus a margin (:mod:`breastflow.data.slice_choice`). Studies come from
the catalog's patient-level split only, checked by
:func:`breastflow.data.split_guard.check_split`. Source and targets must share
one ``(Z, Y, X)`` grid (the store keeps acquisitions unregistered; a study whose
phases differ in shape is an error). Optional resizing to ``image_size``
(bilinear with anti-aliasing for images, nearest for the mask) and the paper's
augmentation (:mod:`breastflow.data.augment`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from breastflow.data import keys
from breastflow.data.augment import AugmentConfig, augment_arrays, item_rng
from breastflow.data.datasets.base import DatasetError, DatasetSpec, StoreDataset
from breastflow.data.datasets.registry import DATASETS
from breastflow.data.slice_choice import MarginBasis, SliceChoice, lesion_slices
from breastflow.data.slices import mask_series
from breastflow.data.split_guard import check_split
from breastflow.data.version import ANNOTATIONS, dataset_version
from breastflow.store import layout
from breastflow.store.annotation_commit import (
    LESION_MASK,
    AnnotationRecord,
    read_annotation_commits,
)
from breastflow.store.catalog import read_catalog

log = logging.getLogger(__name__)


class MissingPhaseError(DatasetError):
    """Studies of the split lack a requested phase (or the annotations ``LESION`` slices need)."""


class PairedPhasesSpec(DatasetSpec):
    """Spec of :class:`PairedPhasesDataset`.

    Attributes:
        source: input series role (``pre``).
        targets: target series roles, one output channel each, in order.
        slices: ``ALL`` axial slices or ``LESION`` slices plus margin.
        margin: lesion margin fraction each side (paper 003: 0.05); margin_basis: of
            the box extent (default) or the volume depth.
        require_all: ``True``: a study lacking a phase (or, for ``LESION``, annotations)
            is an error; ``False``: such studies are skipped and counted in ``skipped``.
        image_size: resize every slice to ``(S, S)`` (paper 003: 512); ``None`` keeps
            the stored size (then a batch needs studies of one size).
        augment: augmentation (``AugmentConfig()`` is the paper's: rot90 p 0.5); ``None`` = off.
    """

    source: str = "pre"
    targets: tuple[str, ...] = ("post_1",)
    slices: SliceChoice = SliceChoice.ALL
    margin: float = Field(default=0.05, ge=0.0, le=1.0)
    margin_basis: MarginBasis = MarginBasis.BOX_EXTENT
    require_all: bool = True
    image_size: int | None = Field(default=None, ge=8)
    augment: AugmentConfig | None = None

    @field_validator("slices")
    @classmethod
    def _dataset_slices(cls, value: SliceChoice) -> SliceChoice:
        if value is SliceChoice.EVERY:
            raise ValueError("slices='every' is for evaluation selections; a training dataset takes 'all' or 'lesion'")
        return value

    @field_validator("source")
    @classmethod
    def _source_name(cls, value: str) -> str:
        return layout.check_name(value, "source series")

    @field_validator("targets")
    @classmethod
    def _target_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("targets is empty: give at least one post-contrast series, e.g. ('post_1',)")
        if len(set(value)) != len(value):
            raise ValueError(f"targets {value} repeat a series")
        return tuple(layout.check_name(v, "target series") for v in value)

    @model_validator(mode="after")
    def _distinct(self) -> PairedPhasesSpec:
        if self.source in self.targets:
            raise ValueError(f"source {self.source!r} is also a target")
        return self


@DATASETS.register("paired_phases")
class PairedPhasesDataset(StoreDataset):
    """Pre -> post-contrast slice pairs of one split (see the module docstring for items).

    Attributes (besides :class:`StoreDataset`'s):
        items: ``(study, z)`` of every item, in (study, z) order.
        skipped: studies left out with ``require_all=False``, by reason.
        studies: the studies used.
    """

    spec_type = PairedPhasesSpec
    spec: PairedPhasesSpec

    def _plan(self) -> None:
        spec = self.spec
        catalog = read_catalog(self.loc)
        if catalog.empty:
            raise DatasetError(f"store {self.loc.url} has no committed series (is it a breastflow store?)")
        rows = catalog[catalog.split == spec.split.value]
        if rows.empty:
            raise DatasetError(f"store {self.loc.url} has no {spec.split.value} studies "
                               f"(splits present: {', '.join(sorted(catalog.split.unique()))})")
        check_split(catalog, spec.split, rows.patient.unique())  # before anything else: never train on test data
        phases = (spec.source, *spec.targets)
        studies = sorted(rows.study.unique())
        self.skipped: dict[str, int] = {}
        studies = self._with_phases(rows, studies, phases)
        notes = {r.study: r for r in read_annotation_commits(self.loc)} if len(studies) else {}
        if spec.slices is SliceChoice.LESION:
            lacking = [s for s in studies if s not in notes]
            if lacking:
                self._missing(f"{len(lacking)} of {len(studies)} {spec.split.value} studies have no committed "
                              f"lesion annotations (e.g. {lacking[0]}), which slices=lesion needs; ingest them "
                              "with --annotations, or choose slices=all", "no-annotations", len(lacking))
                studies = [s for s in studies if s in notes]
        items: list[tuple[str, int]] = []
        with_mask: set[str] = set()
        series_keys: list[tuple[str, str]] = []
        for study in studies:
            z = self._grid(rows[rows.study == study], study, phases)[0]
            note = notes.get(study)
            if spec.slices is SliceChoice.ALL:
                chosen = list(range(z))
            else:
                chosen = lesion_slices(self._boxes(note, phases), z, spec.margin, spec.margin_basis)
            items.extend((study, k) for k in chosen)
            series_keys.extend((study, p) for p in phases)
            if note is not None and (note.has_mask or spec.slices is SliceChoice.LESION):
                series_keys.append((study, ANNOTATIONS))
                if note.has_mask:
                    with_mask.add(study)
        if not items:
            raise DatasetError(f"no {spec.split.value} slices selected from {len(studies)} studies "
                               f"(slices={spec.slices.value}; annotated healthy studies have no lesion slices)")
        self.studies = tuple(studies)
        self.items = items
        self.with_mask = frozenset(with_mask)
        self.series_keys = tuple(series_keys)
        self.version = dataset_version(self.loc, self.series_keys, catalog)

    def _missing(self, message: str, reason: str, count: int) -> None:
        if self.spec.require_all:
            raise MissingPhaseError(message)
        self.skipped[reason] = self.skipped.get(reason, 0) + count
        log.warning("paired_phases: skipping %d studies (%s)", count, reason)

    def _with_phases(self, rows: pd.DataFrame, studies: list[str], phases: tuple[str, ...]) -> list[str]:
        """The studies holding every phase (or an error naming the first missing phase)."""
        present = rows.groupby("study").series.agg(set)
        for phase in phases:
            have = [s for s in studies if phase in present[s]]
            if len(have) < len(studies):
                lacking = len(studies) - len(have)
                all_have = int((present.apply(lambda names, p=phase: p in names)).sum())
                self._missing(f"phase {phase!r} is missing in {lacking} of {len(studies)} {self.spec.split.value} "
                              f"studies ({all_have} have it); choose a phase every study has, or pass "
                              "require_all=False to skip those studies", f"missing-{phase}", lacking)
                studies = have
        return studies

    def _grid(self, rows: pd.DataFrame, study: str, phases: tuple[str, ...]) -> tuple[int, int, int]:
        shapes = {r.series: (int(r.z), int(r.y), int(r.x)) for r in rows.itertuples() if r.series in phases}
        first = shapes[phases[0]]
        for phase in phases[1:]:
            if shapes[phase] != first:
                raise DatasetError(f"study {study}: {phase} has shape {shapes[phase]} but {phases[0]} has {first}; "
                                   "paired phases need one (Z, Y, X) grid")
        return first

    def _boxes(self, note: AnnotationRecord | None, phases: tuple[str, ...]) -> list:
        """3-D lesion boxes of the study (they index the pre-contrast grid, shared by every phase)."""
        if note is None:
            return []
        return [b for b in note.boxes if b.start_slice is not None and b.series in (*phases, note.mask_series)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item; see the module docstring for keys, shapes and ranges."""
        study, z = self.items[index]
        spec = self.spec
        phases = (spec.source, *spec.targets)
        picks = [(study, p, z) for p in phases]
        if study in self.with_mask:
            picks.append((study, mask_series(LESION_MASK), z))
        raw = self.reader.read_picks(picks)
        image = self.intensity_map(study, spec.source).normalise(raw[0])[None]
        target = np.stack([self.intensity_map(study, p).normalise(a) for p, a in zip(spec.targets, raw[1:len(phases)], strict=True)])
        mask = raw[-1][None].astype(np.uint8) if study in self.with_mask else np.zeros_like(image, dtype=np.uint8)
        if spec.image_size is not None:
            image, target, mask = _resized(image, target, mask, spec.image_size)
        if spec.augment is not None:
            image, target, mask = augment_arrays([image, target, mask], spec.augment,
                                                 item_rng(spec.augment.seed, self.epoch, index))
        return {keys.IMAGE: torch.from_numpy(image), keys.TARGET: torch.from_numpy(target),
                keys.MASK: torch.from_numpy(mask), keys.KEY: f"{study}/z{z}"}


def _resized(image: np.ndarray, target: np.ndarray, mask: np.ndarray,
             size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(C, H, W)`` arrays resized to ``(C, size, size)`` (bilinear, anti-aliased; nearest for the mask)."""
    if image.shape[-2:] == (size, size):
        return image, target, mask
    both = torch.from_numpy(np.concatenate([image, target]))[None]
    both = F.interpolate(both, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    labels = F.interpolate(torch.from_numpy(mask)[None].float(), size=(size, size), mode="nearest")[0]
    both = both.clamp(-1.0, 1.0).numpy()
    return both[:1].copy(), both[1:].copy(), labels.to(torch.uint8).numpy()
