"""``vendor_domains``: unpaired axial slices of two scanner domains (CycleGAN harmonisation, papers 000 / 002).

Two domains are defined by one catalog column (default ``vendor``, the DICOM
Manufacturer, e.g. ``"GE MEDICAL SYSTEMS"``, ``"SIEMENS"``) and two values.
A study belongs to a domain when its row of ``series`` matches the value,
case-insensitively, either exactly or as the first word(s) of the column
(``"GE"`` matches ``"GE MEDICAL SYSTEMS"`` but not ``"GEM"``); numeric columns
such as ``field_strength_t`` match numerically (``"3"`` matches ``3.0``).

Each item ``i`` of epoch ``e``:

* ``IMAGE``: ``(1, H, W)`` float32 in ``[-1, 1]``, slice ``i mod N_A`` of domain A
  (slices in (study, z) order; shuffle with the DataLoader);
* ``TARGET``: ``(1, H, W)``, slice ``perm_e[i mod N_B]`` of domain B, where
  ``perm_e`` is a permutation of B's slices seeded by ``(seed, e)``: the pairing
  of A and B changes every epoch (:meth:`StoreDataset.set_epoch`) and is the same
  in any worker;
* ``LABEL`` = 0 (domain A) and ``TARGET_LABEL`` = 1 (domain B), int64;
* ``KEY``: ``"<study>/<series>/z<k>|<study>/<series>/z<k>"`` (A then B).

``len`` is ``max(N_A, N_B)`` (as CycleGAN's unaligned dataset), so every slice
of both domains is seen at least once per epoch. Intensities follow the one
rule of :mod:`breastflow.data.intensity` (per-study unit from the pre-contrast
commit record). ``image_size`` resizes every slice to ``(S, S)``; without it
a batch needs slices of one in-plane size (scanners of two vendors rarely
share one). Augmentation, when on, is drawn independently for A and B.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from breastflow.data import keys
from breastflow.data.augment import AugmentConfig, augment_arrays, item_rng
from breastflow.data.datasets.base import DatasetError, DatasetSpec, StoreDataset
from breastflow.data.datasets.plan_rows import split_rows
from breastflow.data.datasets.registry import DATASETS
from breastflow.data.datasets.resize import resize_image
from breastflow.data.version import dataset_version
from breastflow.store import layout
from breastflow.store.catalog import read_catalog

#: Label of domain A (``IMAGE``) and domain B (``TARGET``).
DOMAIN_A, DOMAIN_B = 0, 1


class MissingDomainError(DatasetError):
    """The split holds no study of a requested domain (or none with the requested series)."""


class VendorDomainsSpec(DatasetSpec):
    """Spec of :class:`VendorDomainsDataset`.

    Attributes:
        series: the series role read from both domains (``pre``).
        domain_column: catalog column defining the domains (``vendor``, ``model``,
            ``field_strength_t`` ...).
        domains: ``(A, B)`` values of that column (see the module docstring for matching).
        image_size: resize every slice to ``(S, S)``; ``None`` keeps the stored size.
        augment: augmentation, drawn independently for A and B; ``None`` = off.
        seed: seed of the per-epoch permutation of domain B.
    """

    series: str = "pre"
    domain_column: str = "vendor"
    domains: tuple[str, str] = ("GE", "SIEMENS")
    image_size: int | None = Field(default=None, ge=8)
    augment: AugmentConfig | None = None
    seed: int = Field(default=0, ge=0)

    @field_validator("series")
    @classmethod
    def _series_name(cls, value: str) -> str:
        return layout.check_name(value, "series")

    @model_validator(mode="after")
    def _distinct(self) -> VendorDomainsSpec:
        a, b = (d.strip().casefold() for d in self.domains)
        if not a or not b:
            raise ValueError(f"domains {self.domains} hold an empty value")
        if a == b:
            raise ValueError(f"domains {self.domains} are the same value")
        return self


def domain_matches(value: object, domain: str) -> bool:
    """Whether a catalog value belongs to ``domain`` (exact or leading-words match, case-insensitive;
    numeric values compare numerically). Missing values match nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        try:
            return float(value) == float(domain)
        except ValueError:
            return False
    text, want = str(value).strip().casefold(), domain.strip().casefold()
    return text == want or text.startswith(want + " ")


@DATASETS.register("vendor_domains")
class VendorDomainsDataset(StoreDataset):
    """Unpaired slices of two domains (see the module docstring for items).

    Attributes (besides :class:`StoreDataset`'s):
        studies: ``(A studies, B studies)``.
        items_a, items_b: ``(study, z)`` of every slice of each domain, in order.
    """

    spec_type = VendorDomainsSpec
    spec: VendorDomainsSpec

    def _plan(self) -> None:
        spec = self.spec
        catalog = read_catalog(self.loc)
        rows = split_rows(self.loc, catalog, spec.split, "vendor_domains")
        if spec.domain_column not in rows.columns:
            raise DatasetError(f"vendor_domains: the catalog of store {self.loc.url} has no column "
                               f"{spec.domain_column!r}; choose one of {', '.join(rows.columns)}")
        series_rows = rows[rows.series == spec.series]
        if series_rows.empty:
            raise MissingDomainError(f"vendor_domains: store {self.loc.url} has no {spec.split.value} study with "
                                     f"series {spec.series!r} (series present: "
                                     f"{', '.join(sorted(rows.series.unique()))})")
        chosen: list[list[str]] = []
        for domain in spec.domains:
            match = series_rows[[domain_matches(v, domain) for v in series_rows[spec.domain_column]]]
            if match.empty:
                present = sorted({str(v) for v in series_rows[spec.domain_column] if not pd.isna(v)})
                raise MissingDomainError(
                    f"vendor_domains: store {self.loc.url} has no {spec.split.value} study with series "
                    f"{spec.series!r} and {spec.domain_column} {domain!r} (values present: "
                    f"{', '.join(present) or 'none'})")
            chosen.append(sorted(match.study.unique()))
        both = sorted(set(chosen[0]) & set(chosen[1]))
        if both:
            raise DatasetError(f"vendor_domains: study {both[0]} matches both domains {spec.domains}; "
                               "give values that do not overlap")
        depth = {r.study: int(r.z) for r in series_rows.itertuples()}
        self.studies = (tuple(chosen[0]), tuple(chosen[1]))
        self.items_a = [(s, z) for s in chosen[0] for z in range(depth[s])]
        self.items_b = [(s, z) for s in chosen[1] for z in range(depth[s])]
        self.series_keys = tuple((s, spec.series) for s in (*chosen[0], *chosen[1]))
        self.version = dataset_version(self.loc, self.series_keys, catalog)
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return max(len(self.items_a), len(self.items_b))

    def _b_index(self, index: int) -> int:
        """Index into ``items_b`` of item ``index`` this epoch (permutation cached per process and epoch)."""
        perm = getattr(self, "_perm", None)
        if perm is None or perm[0] != self.epoch:
            perm = (self.epoch, np.random.default_rng([self.spec.seed, self.epoch]).permutation(len(self.items_b)))
            self._perm = perm
        return int(perm[1][index % len(self.items_b)])

    def _slice(self, study: str, z: int, rng: np.random.Generator | None) -> np.ndarray:
        series = self.spec.series
        (raw,) = self.reader.read_picks([(study, series, z)])
        image = self.intensity_map(study, series).normalise(raw)[None]
        if self.spec.image_size is not None:
            image = resize_image(image, (self.spec.image_size, self.spec.image_size))
        if rng is not None and self.spec.augment is not None:
            (image,) = augment_arrays([image], self.spec.augment, rng)
        return image

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One item; see the module docstring for keys, shapes and ranges."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} is outside vendor_domains with {len(self)} items")
        a = self.items_a[index % len(self.items_a)]
        b = self.items_b[self._b_index(index)]
        augment = self.spec.augment
        rng_a = item_rng(augment.seed, self.epoch, index) if augment else None
        rng_b = np.random.default_rng([augment.seed, self.epoch, index, DOMAIN_B]) if augment else None
        series = self.spec.series
        return {keys.IMAGE: torch.from_numpy(self._slice(*a, rng_a)),
                keys.TARGET: torch.from_numpy(self._slice(*b, rng_b)),
                keys.LABEL: torch.tensor(DOMAIN_A, dtype=torch.int64),
                keys.TARGET_LABEL: torch.tensor(DOMAIN_B, dtype=torch.int64),
                keys.KEY: f"{a[0]}/{series}/z{a[1]}|{b[0]}/{series}/z{b[1]}"}
