"""``mammograms``: whole full-field mammograms at a power-of-two size (progressive WGAN-GP, paper 004).

Ingest stores each mammography view as a series ``mg_<l|r>_<cc|mlo>`` of shape
``(1, rows, cols)`` in its native dtype, photometric interpretation as
acquired (``MONOCHROME1`` is *not* inverted; ``attrs.breastflow.dicom.photometric``
says which), and the catalog carries ``view`` and ``laterality``. Each item is
one view:

* ``IMAGE``: ``(1, S, S)`` float32 in ``[-1, 1]``, ``S = image_size`` (a power of
  two, default 256), built in this order:

  1. **intensity** (per image; mammograms have no pre-contrast unit): physical
     values ``x`` (stored rescale applied) map to ``2 * clip((x - lo) / (hi - lo),
     0, 1) - 1`` with ``lo, hi`` the ``low_percentile`` / ``high_percentile``
     (default 0.5 / 99.5) of the image, sampled on every ``s``-th row and column,
     ``s = max(1, min(rows, cols) // 512)``; a ``MONOCHROME1`` image is then negated,
     so dense tissue is bright and air is -1 for every vendor;
  2. **orientation**: with ``orient`` (default), right-breast views are flipped left
     to right, so every image has the chest wall on the left (the store keeps views as
     they hang: left views chest wall at column 0, right views mirrored);
  3. **size**: scaled to fit ``S x S`` keeping the aspect ratio (bilinear, anti-aliased),
     then padded with -1 (air): columns on the right (the nipple side), rows equally
     above and below.

* ``MASK``: ``(1, S, S)`` uint8, the view's lesion boxes (from the annotation commit)
  filled with their lesion id, transformed as the image (nearest); zeros without boxes;
* ``LABEL``: int64 :class:`MammoViewCode` (laterality and view: 0 L-CC, 1 L-MLO, 2 R-CC, 3 R-MLO);
* ``KEY``: ``"<study>/<series>"``.

Paper 004 (MammoGAN) resizes to 1280 x 1024 keeping the aspect ratio; this
family pads to a square so that the progressive generator can grow 4 -> 8 ->
... -> ``S`` in both axes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from breastflow.data import keys
from breastflow.data.datasets.base import DatasetError, DatasetSpec, StoreDataset
from breastflow.data.datasets.plan_rows import split_rows
from breastflow.data.datasets.registry import DATASETS
from breastflow.data.datasets.resize import resize_image, resize_labels
from breastflow.data.version import ANNOTATIONS, dataset_version
from breastflow.store.annotation_commit import read_annotation_commits
from breastflow.store.catalog import read_catalog, view_of
from breastflow.vocabulary import Laterality, ViewPosition

#: Largest sampling grid side used for the percentiles (``s = min(rows, cols) // SAMPLE_SIDE``).
SAMPLE_SIDE = 512


class MammoViewCode(IntEnum):
    """``LABEL`` of a mammogram: laterality and view."""

    L_CC = 0
    L_MLO = 1
    R_CC = 2
    R_MLO = 3


class MammoIntensity(BaseModel):
    """Per-image percentile rule of mammograms (see the module docstring).

    Attributes:
        low_percentile, high_percentile: percentiles mapped to -1 and +1 (before a MONOCHROME1 negation).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    low_percentile: float = Field(default=0.5, ge=0.0, lt=100.0)
    high_percentile: float = Field(default=99.5, gt=0.0, le=100.0)

    @model_validator(mode="after")
    def _ordered(self) -> MammoIntensity:
        if not self.low_percentile < self.high_percentile:
            raise ValueError(f"low_percentile {self.low_percentile} must be below high_percentile "
                             f"{self.high_percentile}")
        return self


class MammogramsSpec(DatasetSpec):
    """Spec of :class:`MammogramsDataset`.

    Attributes:
        image_size: output side ``S``, a power of two >= 4.
        views: view positions to use (:class:`breastflow.vocabulary.ViewPosition` values, ``CC``, ``MLO``).
        orient: flip right-breast views so the chest wall is on the left.
        intensity: the per-image percentile rule (replaces the MRI study-unit rule).
    """

    image_size: int = Field(default=256, ge=4)
    views: tuple[str, ...] = ("CC", "MLO")
    orient: bool = True
    intensity: MammoIntensity = MammoIntensity()  # type: ignore[assignment]

    @field_validator("image_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"image_size {value} is not a power of two (progressive growing doubles 4 -> S)")
        return value

    @field_validator("views")
    @classmethod
    def _view_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.upper() for v in value)
        known = tuple(v.value for v in ViewPosition)
        if not names or any(v not in known for v in names):
            raise ValueError(f"views {value} must be a non-empty subset of {known}")
        return names


@DATASETS.register("mammograms")
class MammogramsDataset(StoreDataset):
    """Whole mammograms of one split (see the module docstring for items).

    Attributes (besides :class:`StoreDataset`'s):
        items: ``(study, series, view, laterality)`` of every view, in (study, series) order.
    """

    spec_type = MammogramsSpec
    spec: MammogramsSpec

    def _plan(self) -> None:
        spec = self.spec
        catalog = read_catalog(self.loc)
        rows = split_rows(self.loc, catalog, spec.split, "mammograms")
        items, shapes = [], {}
        for r in rows.itertuples():
            view, laterality = view_of(r.series)
            if view is not None and view in spec.views:
                items.append((r.study, r.series, view, laterality))
                shapes[(r.study, r.series)] = (int(r.z), int(r.y), int(r.x))
        if not items:
            raise DatasetError(f"mammograms: store {self.loc.url} has no {spec.split.value} mammography views "
                               f"{'/'.join(spec.views)} (series mg_<l|r>_<cc|mlo>; series present: "
                               f"{', '.join(sorted(rows.series.unique())[:8])}); ingest mammograms, e.g. a "
                               "cohort from `breastflow phantom --modality mammo`")
        for (study, series), shape in shapes.items():
            if shape[0] != 1:
                raise DatasetError(f"mammograms: store {self.loc.url}: {study}/{series} has shape {shape}; "
                                   "a mammography view is one (1, rows, cols) image")
        items.sort()
        studies = {study for study, *_ in items}
        self.boxes: dict[tuple[str, str], list[tuple[int, int, int, int, int]]] = {}
        for note in read_annotation_commits(self.loc):
            if note.study in studies:
                for b in note.boxes:
                    if b.start_slice is None:
                        self.boxes.setdefault((note.study, b.series), []).append(
                            (b.start_row, b.end_row, b.start_column, b.end_column, b.lesion_id))
        annotated = sorted({study for study, _ in self.boxes})
        self.items = items
        self.series_keys = tuple([(s, series) for s, series, *_ in items] + [(s, ANNOTATIONS) for s in annotated])
        self.version = dataset_version(self.loc, self.series_keys, catalog)

    def __len__(self) -> int:
        return len(self.items)

    def photometric(self, study: str, series: str) -> str:
        """The stored photometric interpretation of a view (``MONOCHROME2`` when not recorded)."""
        cache: dict[tuple[str, str], str] = self.__dict__.setdefault("_photometric", {})
        if (study, series) not in cache:
            from breastflow.store.zarr_io import series_attrs

            dicom = series_attrs(self.loc, study, series).get("breastflow", {}).get("dicom", {})
            cache[(study, series)] = str(dicom.get("photometric") or "MONOCHROME2").upper()
        return cache[(study, series)]

    def normalise(self, study: str, series: str, raw: np.ndarray) -> np.ndarray:
        """``(rows, cols)`` raw values -> float32 in ``[-1, 1]`` by the percentile rule (module docstring).

        Raises:
            DatasetError: the image is constant between the two percentiles.
        """
        rule = self.spec.intensity
        rescale = self.rescale(study, series)
        x = raw.astype(np.float32) * np.float32(rescale.slope) + np.float32(rescale.intercept)
        step = max(1, min(x.shape) // SAMPLE_SIDE)
        lo, hi = (float(v) for v in np.percentile(x[::step, ::step], [rule.low_percentile, rule.high_percentile]))
        if not hi > lo:
            raise DatasetError(f"mammograms: store {self.loc.url}: {study}/{series} is constant between its "
                               f"{rule.low_percentile:g}th and {rule.high_percentile:g}th percentiles ({lo:g})")
        y = np.clip((x - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - 1.0, -1.0, 1.0)
        if self.photometric(study, series) == "MONOCHROME1":
            np.negative(y, out=y)
        return y

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item; see the module docstring for keys, shapes and ranges."""
        study, series, view, laterality = self.items[index]
        size = self.spec.image_size
        raw = self.reader.read_slices(study, series, [0])[0]
        image = self.normalise(study, series, raw)[None]
        mask = np.zeros(image.shape, np.uint8)
        for y0, y1, x0, x1, lesion_id in self.boxes.get((study, series), []):
            mask[0, y0:y1 + 1, x0:x1 + 1] = lesion_id
        if self.spec.orient and laterality == Laterality.RIGHT.value:
            image, mask = image[..., ::-1], mask[..., ::-1]
        height, width = image.shape[1:]
        scale = size / max(height, width)
        fitted = (max(1, min(size, round(height * scale))), max(1, min(size, round(width * scale))))
        image, mask = resize_image(image, fitted), resize_labels(mask, fitted)
        top = (size - fitted[0]) // 2
        out = np.full((1, size, size), -1.0, np.float32)
        out[:, top:top + fitted[0], :fitted[1]] = image
        labels = np.zeros((1, size, size), np.uint8)
        labels[:, top:top + fitted[0], :fitted[1]] = mask
        code = MammoViewCode[f"{laterality}_{view}"]
        return {keys.IMAGE: torch.from_numpy(out), keys.MASK: torch.from_numpy(labels),
                keys.LABEL: torch.tensor(int(code), dtype=torch.int64), keys.KEY: f"{study}/{series}"}
