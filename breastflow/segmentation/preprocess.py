"""One segmentation case from the store, preprocessed as paper 003 (and nnU-Net) do.

:func:`load_case` reads a case's image from one :class:`SegmentationSource`
(real pre-contrast, real first post-contrast, or the synthetic first
post-contrast of a named synthetic set) and its lesion mask, then:

1. **single-breast crop** (paper 003 sec. 3.4): split at mid-width (X), keep the
   half holding the mask's centre of mass (:func:`~.volume_ops.crop_single_breast`);
2. **N4 bias-field correction** (paper 003, ref. 76; SimpleITK, Otsu mask,
   shrink factor 4), on by default (:func:`~.volume_ops.n4_correct`);
3. **resampling** to a target spacing, nnU-Net style (the median spacing of the
   training cases: :func:`breastflow.segmentation.plan.target_spacing`), third
   order B-spline (or linear) for the image, nearest neighbour for the mask;
4. **z-score** per volume (nnU-Net's MRI normalisation).

Steps 3 and 4 are optional (``target_spacing=None``, ``zscore=False``): the
nnU-Net export leaves them to nnU-Net itself. The mask is binarised (labels
``> 0`` = tumour, 1). Images are read in physical values
(:func:`breastflow.generate.compare.read_physical`), masks through
:func:`breastflow.data.slices.read_slices`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from breastflow.data.slices import mask_series, read_slices
from breastflow.generate.compare import read_physical
from breastflow.generate.synthetic import SyntheticSetError, read_synthetic_commits, synthetic_location
from breastflow.segmentation.cases import MASK_SERIES, SegmentationCase
from breastflow.segmentation.volume_ops import (
    N4_SHRINK,
    Half,
    Interpolation,
    VolumeGeometry,
    crop_single_breast,
    n4_correct,
    resample,
    zscore,
)
from breastflow.store.annotation_commit import LESION_MASK
from breastflow.store.commit import read_commit
from breastflow.store.fs import StoreLocation
from breastflow.store.zarr_io import series_attrs

#: The post-contrast phase paper 003 synthesises and segments (first DCE sequence).
POST_SERIES = "post_1"


class SegmentationSource(str, Enum):
    """Where a case's image comes from (its mask is always the study's lesion mask)."""

    REAL_PRE = "real_pre"
    REAL_POST = "real_post"
    SYN_POST = "syn_post"

    @property
    def series(self) -> str:
        """Store series name of the image (``pre`` or ``post_1``)."""
        return MASK_SERIES if self is SegmentationSource.REAL_PRE else POST_SERIES

    @property
    def synthetic(self) -> bool:
        return self is SegmentationSource.SYN_POST


class PreprocessConfig(BaseModel):
    """How a case is preprocessed (saved beside every experiment).

    Attributes:
        crop: single-breast crop (paper 003).
        n4: N4 bias-field correction (paper 003: on); n4_shrink: its shrink factor.
        target_spacing: ``(dz, dy, dx)`` mm to resample to; ``None`` keeps the native grid.
        interpolation: image interpolation of the resampling.
        zscore: per-volume z-score.
        synthetic: the synthetic set (``synthetic/<name>``) of :attr:`SegmentationSource.SYN_POST`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    crop: bool = True
    n4: bool = True
    n4_shrink: int = Field(default=N4_SHRINK, ge=1)
    target_spacing: tuple[float, float, float] | None = None
    interpolation: Interpolation = Interpolation.BSPLINE
    zscore: bool = True
    synthetic: str | None = None

    @field_validator("target_spacing")
    @classmethod
    def _positive(cls, value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if value is not None and any(v <= 0 for v in value):
            raise ValueError(f"target_spacing must be positive mm, got {value}")
        return value


@dataclass(frozen=True)
class CaseMeta:
    """What :func:`load_case` did to a case.

    Attributes:
        study, patient: pseudonyms; source: the image source; series: the store series read.
        geometry: placement of the returned arrays (after crop and resampling).
        native_shape: ``(Z, Y, X)`` as stored; half: the crop's kept half (``None``: no crop).
        n4: whether N4 ran; zscore: whether the image is z-scored.
    """

    study: str
    patient: str
    source: SegmentationSource
    series: str
    geometry: VolumeGeometry
    native_shape: tuple[int, int, int]
    half: Half | None
    n4: bool
    zscore: bool


def source_location(loc: StoreLocation, case: SegmentationCase, source: SegmentationSource,
                    synthetic: str | None) -> StoreLocation:
    """The store holding ``case``'s image of ``source`` (the synthetic set's nested store for ``syn_post``).

    Raises:
        SyntheticSetError: ``syn_post`` without a synthetic set name, a set that does not
            exist (names the sets present), or a set without this study's ``post_1``.
    """
    if not source.synthetic:
        return loc
    if not synthetic:
        raise SyntheticSetError("source syn_post needs a synthetic set name (--synthetic NAME)")
    sloc = synthetic_location(loc, synthetic)
    if read_commit(sloc, case.study, source.series) is None:
        records = read_synthetic_commits(loc, synthetic)  # raises, naming the sets present, when the set is absent
        raise SyntheticSetError(
            f"synthetic set {synthetic!r} of {loc.url} has no {source.series} for study {case.study} "
            f"(it holds {len(records)} series); generate it for every segmentation case: "
            f"breastflow generate CHECKPOINT {loc.url} --split all --out {synthetic}")
    return sloc


def read_mask(loc: StoreLocation, case: SegmentationCase) -> np.ndarray:
    """The case's binary lesion mask ``(Z, Y, X)`` uint8 (labels ``> 0`` -> 1) on the ``pre`` grid."""
    labels = read_slices(loc, case.study, mask_series(LESION_MASK), range(case.shape[0]))
    return (labels > 0).astype(np.uint8)


def load_case(store: str | StoreLocation, case: SegmentationCase, source: SegmentationSource,
              config: PreprocessConfig | None = None) -> tuple[np.ndarray, np.ndarray, CaseMeta]:
    """Read and preprocess one case's image of ``source`` and its mask.

    Args:
        store: the real store (URL or location).
        case: the case (:func:`breastflow.segmentation.cases.segmentation_cases`).
        source: which image.
        config: preprocessing (default :class:`PreprocessConfig`); ``config.synthetic`` names the set for ``syn_post``.

    Returns:
        ``(image, mask, meta)``: image ``(Z, Y, X)`` float32, mask ``(Z, Y, X)`` uint8 in {0, 1}
        on the same grid, and :class:`CaseMeta`.

    Raises:
        SyntheticSetError: see :func:`source_location`.
        FileNotFoundError: the series or mask is not in the store.
        ValueError: the image is not on the mask's grid, or the mask is empty.
    """
    config = PreprocessConfig() if config is None else config
    loc = store if isinstance(store, StoreLocation) else StoreLocation.from_url(store)
    where = f"case {case.study} ({source.value})"
    image_loc = source_location(loc, case, source, config.synthetic)
    image = read_physical(image_loc, case.study, source.series).astype(np.float32)
    mask = read_mask(loc, case)
    geometry = VolumeGeometry.from_attrs(series_attrs(loc, case.study, MASK_SERIES).get("breastflow", {}))
    image_geometry = VolumeGeometry.from_attrs(series_attrs(image_loc, case.study, source.series).get("breastflow", {}))
    if image.shape != mask.shape or not np.allclose(image_geometry.spacing, geometry.spacing, rtol=1e-4):
        raise ValueError(f"{where}: {source.series} {image.shape} at {image_geometry.spacing} mm is not on the "
                         f"mask's {MASK_SERIES} grid {mask.shape} at {geometry.spacing} mm")
    half = None
    if config.crop:
        image, mask, geometry, half = crop_single_breast(image, mask, geometry, where)
    if config.n4:
        image = n4_correct(image, geometry, shrink=config.n4_shrink)
    if config.target_spacing is not None:
        image, new_geometry = resample(image, geometry, config.target_spacing, config.interpolation)
        mask, _ = resample(mask, geometry, config.target_spacing, None)
        geometry = new_geometry
    if config.zscore:
        image = zscore(image)
    meta = CaseMeta(study=case.study, patient=case.patient, source=source, series=source.series,
                    geometry=geometry, native_shape=case.shape, half=half, n4=config.n4, zscore=config.zscore)
    return image.astype(np.float32, copy=False), mask, meta
