"""``lesion_patches``: class-labelled multi-phase patches of lesions and healthy tissue (paper 001).

Conditional DCGAN / WGAN of paper 001 (Haarburger et al. 2019, sec. 2.2)
generate axial DCE patches conditioned on benign / malignant / healthy. Each
item is one ``P x P`` axial patch (``patch_size``, default 32; the paper uses
64) of one study:

* ``IMAGE``: ``(C, P, P)`` float32 in ``[-1, 1]``, one channel per phase of
  ``phases`` in order (default ``("pre", "post_1")``, C = 2), all phases of a
  study through one intensity unit (:mod:`breastflow.data.intensity`);
* ``MASK``: ``(1, P, P)`` uint8 lesion labels (the stored ``masks/lesions`` when
  committed, else the boxes filled with their lesion id); zeros for healthy patches;
* ``LABEL``: int64 :class:`PatchClass` (0 healthy, 1 benign, 2 malignant);
* ``KEY``: ``"<study>/z<k>/y<row>x<col>"`` (the patch centre), PHI-free.

**Lesion patches** are centred on the in-plane centre of each lesion box
(``((start + end) // 2)`` per axis, boxes inclusive) on every axial slice of the
box (``lesion_slices=box``) or on its middle slice only (``centre``); the
label is the box's ``lesion_class`` from the study's annotation commit. A
lesion near the image edge keeps its centre: the part of the patch outside
the image is padded, per channel, with the minimum of that normalised slice
(the mask with 0), so a lesion patch never reads beyond the image.

**Healthy patches** lie wholly inside the image. Their number is
``round(healthy_ratio * lesion patches)``; healthy patch ``j`` comes from the
``j``-th annotated study in turn (annotated healthy studies included). Its
slice and position are drawn from a generator seeded by ``(seed, j)``: the
first slice (in a seeded random order) with a valid position, uniformly among
its valid positions. A position is valid when at least ``min_body_fraction``
of the patch is body (physical value of the first phase at least
``body_threshold`` times the study unit) and the patch, grown by
``healthy_gap`` voxels, overlaps no lesion box of the study (boxes also grown
by ``healthy_gap`` slices along Z). Only annotated studies yield healthy
patches: without annotations, "no lesion" is unknown.

Items depend only on the store, the spec and ``seed``: the same spec gives the
same patches in any process and on any run.
"""

from __future__ import annotations

import logging
from enum import Enum, IntEnum
from typing import Any, NamedTuple

import numpy as np
import torch
from pydantic import Field, field_validator

from breastflow.data import keys
from breastflow.data.datasets.base import DatasetError, DatasetSpec, StoreDataset
from breastflow.data.datasets.paired import MissingPhaseError
from breastflow.data.datasets.plan_rows import missing_message, split_rows, studies_with
from breastflow.data.datasets.registry import DATASETS
from breastflow.data.slices import mask_series
from breastflow.data.version import ANNOTATIONS, dataset_version
from breastflow.store import layout
from breastflow.store.annotation_commit import LESION_MASK, read_annotation_commits
from breastflow.store.catalog import read_catalog
from breastflow.vocabulary import LesionClass

log = logging.getLogger(__name__)


class PatchClass(IntEnum):
    """Class label of a patch (paper 001's conditions: no findings, benign, malignant).

    ``BENIGN`` and ``MALIGNANT`` are read from a box's ``lesion_class``: the
    :class:`breastflow.vocabulary.LesionClass` values, case-insensitive (:data:`LESION_LABELS`).
    """

    HEALTHY = 0
    BENIGN = 1
    MALIGNANT = 2


class LesionSlices(str, Enum):
    """Which axial slices of a lesion box give lesion patches."""

    BOX = "box"  # every slice of the box
    CENTRE = "centre"  # the box's middle slice only


class LesionPatchesSpec(DatasetSpec):
    """Spec of :class:`LesionPatchesDataset` (see the module docstring for the rules).

    Attributes:
        phases: series roles stacked as channels, in order.
        patch_size: patch side ``P`` in voxels.
        healthy_ratio: healthy patches per lesion patch.
        lesion_slices: :class:`LesionSlices`.
        healthy_gap: voxels kept between a healthy patch and any lesion box.
        body_threshold: body = first phase's physical value >= this times the study unit.
        min_body_fraction: least share of body voxels in a healthy patch.
        skip_unclassified: ``False``: a box whose class is not benign/malignant is an error;
            ``True``: such boxes give no lesion patch (healthy patches still avoid them).
        require_all: ``False`` skips studies lacking a phase or annotations (counted in ``skipped``).
        seed: seed of the healthy draws.
    """

    phases: tuple[str, ...] = ("pre", "post_1")
    patch_size: int = Field(default=32, ge=4)
    healthy_ratio: float = Field(default=1.0, ge=0.0)
    lesion_slices: LesionSlices = LesionSlices.BOX
    healthy_gap: int = Field(default=0, ge=0)
    body_threshold: float = Field(default=0.2, gt=0.0)
    min_body_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    skip_unclassified: bool = False
    require_all: bool = True
    seed: int = Field(default=0, ge=0)

    @field_validator("phases")
    @classmethod
    def _phase_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("phases is empty: give at least one series, e.g. ('pre', 'post_1')")
        if len(set(value)) != len(value):
            raise ValueError(f"phases {value} repeat a series")
        return tuple(layout.check_name(v, "phase") for v in value)


class Box(NamedTuple):
    """An inclusive 3-D lesion box ``(z0, z1, y0, y1, x0, x1)`` with its mask label."""

    z0: int
    z1: int
    y0: int
    y1: int
    x0: int
    x1: int
    lesion_id: int


class PatchItem(NamedTuple):
    """A planned patch: lesion patches know their place; healthy ones (``z = -1``) are drawn on reading."""

    study: str
    label: PatchClass
    z: int = -1
    row: int = -1
    col: int = -1
    draw: int = -1  # healthy patch number j (seeds its draw)


@DATASETS.register("lesion_patches")
class LesionPatchesDataset(StoreDataset):
    """Lesion and healthy patches of one split (see the module docstring for items).

    Attributes (besides :class:`StoreDataset`'s):
        items: every :class:`PatchItem`, lesion patches first (by study, box, slice), then healthy.
        boxes: ``{study: [Box, ...]}`` of every annotated study used.
        studies: the annotated studies used; skipped: studies left out, by reason.
    """

    spec_type = LesionPatchesSpec
    spec: LesionPatchesSpec

    def _plan(self) -> None:
        spec = self.spec
        catalog = read_catalog(self.loc)
        rows = split_rows(self.loc, catalog, spec.split, "lesion_patches")
        total = rows.study.nunique()
        studies, lacking = studies_with(rows, spec.phases)
        self.skipped: dict[str, int] = {}
        if lacking:
            message = missing_message(self.loc, "lesion_patches", spec.split, lacking, total)
            if spec.require_all or not studies:
                raise MissingPhaseError(message + ("; choose phases every study has, or pass require_all=False "
                                                   "to skip those studies" if studies else ""))
            self.skipped["missing-phase"] = total - len(studies)
        notes = {r.study: r for r in read_annotation_commits(self.loc) if r.study in set(studies)}
        unannotated = [s for s in studies if s not in notes]
        if unannotated and (spec.require_all or len(unannotated) == len(studies)):
            raise DatasetError(f"lesion_patches: store {self.loc.url}: {len(unannotated)} of {len(studies)} "
                               f"{spec.split.value} studies have no committed lesion annotations (e.g. "
                               f"{unannotated[0]}); ingest them with --annotations"
                               + ("" if len(unannotated) == len(studies) else ", or pass require_all=False"))
        if unannotated:
            self.skipped["no-annotations"] = len(unannotated)
            log.warning("lesion_patches: skipping %d studies without annotations", len(unannotated))
        studies = [s for s in studies if s in notes]
        grids = {(r.study, r.series): (int(r.z), int(r.y), int(r.x)) for r in rows.itertuples()}
        self.grid: dict[str, tuple[int, int, int]] = {}
        self.boxes: dict[str, list[Box]] = {}
        lesions: list[PatchItem] = []
        for study in studies:
            shapes = {grids[(study, p)] for p in spec.phases}
            if len(shapes) > 1:
                raise DatasetError(f"lesion_patches: study {study} in store {self.loc.url}: phases {spec.phases} "
                                   f"differ in shape {sorted(shapes)}; patches need one (Z, Y, X) grid")
            self.grid[study] = shapes.pop()
            self.boxes[study] = []
            for b in notes[study].boxes:
                if b.start_slice is None:  # projection (mammography) boxes
                    continue
                box = Box(b.start_slice, b.end_slice, b.start_row, b.end_row, b.start_column, b.end_column,
                          b.lesion_id)  # type: ignore[arg-type]
                self.boxes[study].append(box)
                label = _patch_class(b.lesion_class)
                if label is None:
                    if spec.skip_unclassified:
                        continue
                    raise DatasetError(f"lesion_patches: store {self.loc.url}: lesion {b.lesion_id} of study {study} "
                                       f"has class {b.lesion_class!r}, not benign/malignant; fix the annotations "
                                       "or pass skip_unclassified=True")
                centre_slices = (range(box.z0, box.z1 + 1) if spec.lesion_slices is LesionSlices.BOX
                                 else [(box.z0 + box.z1) // 2])
                lesions.extend(PatchItem(study, label, z, (box.y0 + box.y1) // 2, (box.x0 + box.x1) // 2)
                               for z in centre_slices)
        if not lesions:
            raise DatasetError(f"lesion_patches: store {self.loc.url} has no classified lesion boxes in its "
                               f"{len(studies)} annotated {spec.split.value} studies; a split of healthy "
                               "studies only cannot set the healthy:lesion ratio")
        n_healthy = round(spec.healthy_ratio * len(lesions))
        healthy = [PatchItem(studies[j % len(studies)], PatchClass.HEALTHY, draw=j) for j in range(n_healthy)]
        self.studies = tuple(studies)
        self.items = lesions + healthy
        self.with_mask = frozenset(s for s in studies if notes[s].has_mask)
        self.series_keys = tuple([(s, p) for s in studies for p in spec.phases] + [(s, ANNOTATIONS) for s in studies])
        self.version = dataset_version(self.loc, self.series_keys, catalog)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item; see the module docstring for keys, shapes and ranges."""
        item = self.items[index]
        if item.label is PatchClass.HEALTHY:
            item = self._healthy_place(item)
        spec, study = self.spec, item.study
        picks = [(study, p, item.z) for p in spec.phases]
        if study in self.with_mask:
            picks.append((study, mask_series(LESION_MASK), item.z))
        raw = self.reader.read_picks(picks)
        slices = np.stack([self.intensity_map(study, p).normalise(a) for p, a in zip(spec.phases, raw, strict=False)])
        if item.label is PatchClass.HEALTHY:
            labels = np.zeros((1, *slices.shape[1:]), np.uint8)
        elif study in self.with_mask:
            labels = raw[-1][None].astype(np.uint8)
        else:
            labels = self._box_labels(study, item.z, slices.shape[1:])
        top, left = item.row - spec.patch_size // 2, item.col - spec.patch_size // 2
        image = crop_padded(slices, top, left, spec.patch_size, slices.min(axis=(1, 2)))
        mask = crop_padded(labels, top, left, spec.patch_size, np.zeros(1, np.uint8))
        return {keys.IMAGE: torch.from_numpy(image), keys.MASK: torch.from_numpy(mask),
                keys.LABEL: torch.tensor(int(item.label), dtype=torch.int64),
                keys.KEY: f"{study}/z{item.z}/y{item.row}x{item.col}"}

    def _box_labels(self, study: str, z: int, shape: tuple[int, ...]) -> np.ndarray:
        """``(1, Y, X)`` uint8 of the study's boxes on slice ``z``, filled with their lesion id."""
        out = np.zeros((1, *shape), np.uint8)
        for b in self.boxes[study]:
            if b.z0 <= z <= b.z1:
                out[0, b.y0:b.y1 + 1, b.x0:b.x1 + 1] = b.lesion_id
        return out

    def _healthy_place(self, item: PatchItem) -> PatchItem:
        """Draw slice and centre of healthy patch ``item.draw`` (see the module docstring).

        Raises:
            DatasetError: no slice of the study has a valid position.
        """
        spec, study = self.spec, item.study
        size = spec.patch_size
        depth, height, width = self.grid[study]
        rng = np.random.default_rng([spec.seed, item.draw])
        first = spec.phases[0]
        threshold = spec.body_threshold * self.study_unit(study)
        rescale = self.rescale(study, first)
        if height >= size and width >= size:
            for z in rng.permutation(depth):
                (raw,) = self.reader.read_slices(study, first, [int(z)])
                valid = _body_share(rescale.apply(raw) >= threshold, size) >= spec.min_body_fraction
                g = spec.healthy_gap
                for b in self.boxes[study]:
                    if b.z0 - g <= z <= b.z1 + g:  # top-left rows/cols whose patch (grown by g) meets the box
                        valid[max(0, b.y0 - size + 1 - g):b.y1 + g + 1,
                              max(0, b.x0 - size + 1 - g):b.x1 + g + 1] = False
                places = np.flatnonzero(valid)
                if places.size:
                    top, left = divmod(int(places[rng.integers(places.size)]), valid.shape[1])
                    return item._replace(z=int(z), row=top + size // 2, col=left + size // 2)
        raise DatasetError(f"lesion_patches: store {self.loc.url}: study {study} ({height}x{width}) has no place for "
                           f"a {size}x{size} healthy patch with {spec.min_body_fraction:.0%} body away from its "
                           "lesions; lower min_body_fraction, patch_size or healthy_gap")


#: Patch label of each lesion class of the shared vocabulary.
LESION_LABELS: dict[LesionClass, PatchClass] = {LesionClass.BENIGN: PatchClass.BENIGN,
                                                LesionClass.MALIGNANT: PatchClass.MALIGNANT}


def _patch_class(lesion_class: str | None) -> PatchClass | None:
    """The label of a stored (free-text) lesion class, ``None`` when it is no :class:`LesionClass` value."""
    try:
        return LESION_LABELS[LesionClass((lesion_class or "").strip().lower())]
    except ValueError:
        return None


def _body_share(body: np.ndarray, size: int) -> np.ndarray:
    """Share of body voxels in every ``size x size`` window of a ``(Y, X)`` mask, by top-left corner.

    Returns:
        ``(Y - size + 1, X - size + 1)`` float64 (summed-area table).
    """
    table = np.zeros((body.shape[0] + 1, body.shape[1] + 1), np.int64)
    table[1:, 1:] = body.astype(np.int64).cumsum(0).cumsum(1)
    sums = table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]
    return sums / float(size * size)


def crop_padded(arrays: np.ndarray, top: int, left: int, size: int, fill: np.ndarray) -> np.ndarray:
    """The ``(C, size, size)`` window at ``(top, left)`` of ``(C, Y, X)`` arrays; outside the image, ``fill[c]``.

    Args:
        arrays: ``(C, Y, X)``; top, left: window corner (may be negative or past the edge).
        size: window side; fill: ``(C,)`` (or ``(1,)``) value per channel for the part outside the image.
    """
    channels, height, width = arrays.shape
    out = np.empty((channels, size, size), arrays.dtype)
    out[...] = np.asarray(fill, arrays.dtype).reshape(-1, 1, 1)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, height), min(left + size, width)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top:y1 - top, x0 - left:x1 - left] = arrays[:, y0:y1, x0:x1]
    return out
