"""Feature extractors for Fréchet distances, looked up in :data:`EXTRACTORS`.

Importing this package registers ``inception`` (FID_Img), ``radimagenet``
(FID_Rad) and ``radiomics`` / ``radiomics-v0`` (FRD v1 / v0).
"""

from breastflow.metrics.features import inception, radimagenet, radiomics  # noqa: F401  (registration)
from breastflow.metrics.features.base import (
    EXTRACTORS,
    FeatureExtractor,
    WeightsNotFoundError,
    build_extractor,
)
from breastflow.metrics.features.extract import extract_features

__all__ = ["EXTRACTORS", "FeatureExtractor", "WeightsNotFoundError", "build_extractor", "extract_features"]
