"""The registry of store-backed dataset families and the one way to build them.

Families register next to their class (``@DATASETS.register("paired_phases")``);
:func:`build_dataset` looks the name up (unknown names fail with the nearest
valid ones) and validates the spec into the family's spec type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from breastflow.data.datasets.base import DatasetSpec, StoreDataset
from breastflow.registry import Registry

DATASETS: Registry[type[StoreDataset]] = Registry("dataset")


def build_dataset(name: str, store_url: str, spec: DatasetSpec | Mapping[str, Any]) -> StoreDataset:
    """Build a registered dataset over a store.

    Args:
        name: registered family name (e.g. ``"paired_phases"``).
        store_url: local path or ``s3://`` URL of the store.
        spec: the family's spec or a mapping validated into it.

    Raises:
        breastflow.registry.RegistryError: unknown ``name`` (names the nearest valid ones).
        DatasetError, TypeError, pydantic.ValidationError: see :class:`StoreDataset`.
    """
    import breastflow.data.datasets  # noqa: F401  (registers the built-in families)

    return DATASETS.get(name)(store_url, spec)
