"""The one contract of breastflow's torch datasets over the store (STYLE habit 1).

A dataset holds only the store URL, a typed spec and a plain plan (a list of
items made from the catalog in the constructor). Everything that talks to
storage after that - the :class:`~breastflow.data.slices.SliceReader`, the
per-series rescale and the per-study intensity unit - is opened lazily in the
process that reads items, i.e. in each DataLoader worker (the reader is
reopened when the process id changes, so a forked worker never reuses its
parent's connections). It works for local stores and ``s3://`` alike
(:class:`~breastflow.store.fs.StoreLocation`).

A family supplies:

* ``spec_type``: its pydantic spec (a :class:`DatasetSpec` subclass), validated once;
* ``_plan()``: read the catalog, choose items, fill ``self.series_keys`` (what it
  reads, for :attr:`version`) - called once by the constructor;
* ``__len__`` and ``__getitem__`` returning a dict keyed by
  :mod:`breastflow.data.keys` (``IMAGE (C, H, W)`` float32 in ``[-1, 1]``,
  ``TARGET``, ``MASK (1, H, W)`` uint8, ``LABEL``, ``KEY``);

and registers itself with ``@DATASETS.register("name")``
(:mod:`breastflow.data.datasets.registry`). The minimal example to copy is
:class:`breastflow.data.datasets.paired.PairedPhasesDataset`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from breastflow.data.intensity import (
    UNIT_SERIES,
    IntensityConfig,
    IntensityMap,
    Normalisation,
    Rescale,
    intensity_unit,
    legacy_minmax_map,
    study_unit_map,
    unit_slices,
)
from breastflow.data.slices import SliceReader
from breastflow.store.fs import StoreLocation
from breastflow.store.splits import Split


class DatasetError(ValueError):
    """A dataset cannot be built from this store and spec; the message says what and how to fix it."""


class DatasetSpec(BaseModel):
    """What every dataset spec holds (families add their own fields).

    Attributes:
        split: patient-level split from the catalog.
        intensity: the intensity rule (:mod:`breastflow.data.intensity`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: Split = Split.TRAIN
    intensity: IntensityConfig = IntensityConfig()


class StoreDataset(torch.utils.data.Dataset, ABC):
    """Base of every store-backed dataset (see the module docstring for the contract).

    Args:
        store_url: local path or ``s3://bucket/prefix`` of the store (credentials and
            endpoint from the environment, as everywhere in breastflow).
        spec: the family's spec, or a mapping validated into it.

    Attributes:
        store_url, spec, loc: as given (``loc`` is the parsed location).
        series_keys: ``(study, series)`` pairs the dataset reads (set by ``_plan``).
        version: :func:`breastflow.data.version.dataset_version` of ``series_keys``.

    Raises:
        DatasetError: from ``_plan`` (empty split, missing phase, leakage ...).
        TypeError: ``spec`` is of another family's type.
    """

    spec_type: ClassVar[type[DatasetSpec]] = DatasetSpec

    def __init__(self, store_url: str, spec: DatasetSpec | Mapping[str, Any]) -> None:
        if isinstance(spec, Mapping):
            spec = self.spec_type.model_validate(dict(spec))
        if not isinstance(spec, self.spec_type):
            raise TypeError(f"{type(self).__name__} needs a {self.spec_type.__name__}, got {type(spec).__name__}")
        self.store_url = store_url
        self.spec = spec
        self.loc = StoreLocation.from_url(store_url)
        self.series_keys: tuple[tuple[str, str], ...] = ()
        self.version = ""
        self.epoch = 0
        self._reset_lazy()
        self._plan()

    @abstractmethod
    def _plan(self) -> None:
        """Read the catalog, choose the items, set ``series_keys`` and ``version``."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    def set_epoch(self, epoch: int) -> None:
        """Seed augmentation draws for ``epoch`` (reaches workers started after the call)."""
        self.epoch = int(epoch)

    # --- lazily opened, per process -------------------------------------------------------------

    def _reset_lazy(self) -> None:
        self._pid: int | None = None
        self._reader: SliceReader | None = None
        self._rescales: dict[tuple[str, str], Rescale] = {}
        self._units: dict[str, float] = {}
        self._maps: dict[tuple[str, str], IntensityMap] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("_pid", "_reader", "_rescales", "_units", "_maps"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_lazy()

    @property
    def reader(self) -> SliceReader:
        """This process's slice reader (opened on first use; reopened after a fork)."""
        if self._reader is None or self._pid != os.getpid():
            self._reset_lazy()
            self._reader = SliceReader(self.loc)
            self._pid = os.getpid()
        return self._reader

    def rescale(self, study: str, series: str) -> Rescale:
        """The stored rescale still to apply to a series (read once per process)."""
        key = (study, series)
        if key not in self._rescales:
            from breastflow.store.zarr_io import series_attrs

            self._rescales[key] = Rescale.from_attrs(series_attrs(self.loc, study, series).get("breastflow", {}))
        return self._rescales[key]

    def study_unit(self, study: str) -> float:
        """The study's intensity unit: from its pre-contrast commit record when computed
        there with the same rule, else from a strided subsample (once per process)."""
        if study not in self._units:
            from breastflow.store.commit import read_commit

            config = self.spec.intensity.unit
            record = read_commit(self.loc, study, UNIT_SERIES)
            if record is not None and record.intensity_unit and record.intensity_unit_rule == config.rule_id():
                self._units[study] = float(record.intensity_unit)
            else:
                z = self.reader.shape(study, UNIT_SERIES)[0]
                sample = self.reader.read_slices(study, UNIT_SERIES, unit_slices(z, config.max_slices))
                self._units[study] = intensity_unit(sample, self.rescale(study, UNIT_SERIES), config, study)
        return self._units[study]

    def intensity_map(self, study: str, series: str) -> IntensityMap:
        """The raw <-> ``[-1, 1]`` map of one series under the spec's rule (cached per process)."""
        key = (study, series)
        if key not in self._maps:
            rule = self.spec.intensity
            rescale = self.rescale(study, series)
            if rule.normalisation is Normalisation.STUDY_UNIT:
                self._maps[key] = study_unit_map(rescale, self.study_unit(study), rule.clip_max)
            else:
                low, high = self._physical_range(study, series, rescale)
                self._maps[key] = legacy_minmax_map(rescale, low, high)
        return self._maps[key]

    def _physical_range(self, study: str, series: str, rescale: Rescale) -> tuple[float, float]:
        """Whole-volume physical min and max (legacy normalisation only), one shard at a time."""
        from breastflow.store.zarr_io import open_series_array

        array = open_series_array(self.loc, study, series)
        step = int(array.shards[0]) if array.shards else int(array.chunks[0])
        low, high = np.inf, -np.inf
        for start in range(0, int(array.shape[0]), step):
            block = array[start:start + step]
            low, high = min(low, float(block.min())), max(high, float(block.max()))
        ends = sorted(float(v) for v in rescale.apply(np.array([low, high])))
        return ends[0], ends[1]
