"""Torch datasets over the store: one base (:mod:`.base`), one registry (:mod:`.registry`), the families."""

from breastflow.data.datasets import (
    lesion_patches,  # noqa: F401  (registers "lesion_patches")
    mammograms,  # noqa: F401  (registers "mammograms")
    paired,  # noqa: F401  (registers "paired_phases")
    vendor_domains,  # noqa: F401  (registers "vendor_domains")
)
from breastflow.data.datasets.base import DatasetError, DatasetSpec, StoreDataset
from breastflow.data.datasets.registry import DATASETS, build_dataset

__all__ = ["DATASETS", "DatasetError", "DatasetSpec", "StoreDataset", "build_dataset"]
