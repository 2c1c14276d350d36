"""``radiomics`` / ``radiomics-v0``: features of the Fréchet Radiomics Distance (FRD).

FRD (Osuala, Konz et al.; package ``frd-score``) compares PyRadiomics
features of two image sets. Both versions are reproduced as frd-score 1.0.x
computes them for 2-D images without masks:

* **v0** (``radiomics-v0``): Original image only, feature classes firstorder,
  glcm, glrlm, gldm, glszm, ngtdm, shape, shape2D with settings
  ``correctMask=True, minimumROIDimensions=1``; full-image mask; features
  min-max normalised jointly over both sets to ``[0, 7.4567...]`` (constant
  features -> mid-range, NaN -> mid-range); the raw squared Fréchet distance.
* **v1** (``radiomics``, frd-score's default): Original + LoG (sigma 2-5) +
  Wavelet images, the extraction_2d.yaml settings (normalize, 2 mm
  resampling, binWidth 5, ...); the image as a (1, H, W) volume and a
  full-image mask with its corner voxel off; numeric diagnostics kept as
  features; images with any NaN feature dropped; float32; z-scores w.r.t. the
  real (first) set; columns with NaN/inf dropped; ``log(d^2)``.

No weights are needed. Radiomic features depend on absolute intensities, so
images enter unwindowed and at their stored size: the preprocessing protocol
is recorded but not applied. Per-image extraction is parallelised over a
local process pool (``num_workers``, env ``BREASTFLOW_RADIOMICS_WORKERS``) or,
when a Dask ``distributed.Client`` is given, over its cluster in chunks of
images gathered in input order (:func:`extract_radiomics_features`,
:func:`frd_from_features`); every path gives identical features.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from breastflow.metrics.features.base import (
    EXTRACTORS,
    FeatureExtractor,
    as_image_batch,
)
from breastflow.metrics.protocols import Protocol, get_protocol

if TYPE_CHECKING:
    from distributed import Client

V0_SETTINGS = {"correctMask": True, "minimumROIDimensions": 1}
V0_FEATURE_CLASSES = ["firstorder", "glcm", "glrlm", "gldm", "glszm", "ngtdm", "shape", "shape2D"]
V0_NORM_RANGE = (0.0, 7.45670747756958)
V1_GLCM = [
    "Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
    "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy", "JointEntropy",
    "Imc1", "Imc2", "Idm", "Idmn", "Id", "Idn", "InverseVariance", "MaximumProbability", "SumEntropy", "SumSquares",
]  # fmt: skip
#: frd-score's ``configs/extraction_2d.yaml`` as a dict.
V1_PARAMS = {
    "imageType": {"Original": {}, "LoG": {"sigma": [2.0, 3.0, 4.0, 5.0]}, "Wavelet": {}},
    "featureClass": {"firstorder": None, "glcm": V1_GLCM, "glrlm": None, "glszm": None, "ngtdm": None},
    "setting": {
        "normalize": True, "normalizeScale": 100, "interpolator": "sitkBSpline", "resampledPixelSpacing": [2, 2, 0],
        "padDistance": 10, "preCrop": True, "force2D": True, "force2Ddimension": 0, "binWidth": 5,
        "voxelArrayShift": 300, "label": 1,
    },
}  # fmt: skip

_LOCAL = threading.local()


def _pyradiomics_extractor(version: str):
    """One PyRadiomics extractor per thread and version (Dask workers may run several threads)."""
    if not hasattr(_LOCAL, "by_version"):
        _LOCAL.by_version = {}
    _EXTRACTORS_BY_VERSION: dict[str, object] = _LOCAL.by_version
    if version not in _EXTRACTORS_BY_VERSION:
        try:
            import radiomics
            from radiomics import featureextractor
        except ImportError as exc:
            raise ImportError(
                "the radiomics extractor needs PyRadiomics: pip install pyradiomics-bhklab SimpleITK"
            ) from exc
        radiomics.setVerbosity(60)
        logging.getLogger("radiomics").setLevel(logging.ERROR)
        if version == "v0":
            params = {"setting": dict(V0_SETTINGS), "featureClass": {c: [] for c in V0_FEATURE_CLASSES}}
        else:
            params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in V1_PARAMS.items()}
        _EXTRACTORS_BY_VERSION[version] = featureextractor.RadiomicsFeatureExtractor(params)
    return _EXTRACTORS_BY_VERSION[version]


def radiomics_features(image: np.ndarray, version: str) -> dict[str, float]:
    """PyRadiomics features of one 2-D image with a full-image mask, as frd-score extracts them.

    Args:
        image: ``(H, W)`` intensities (any real dtype; used as float32).
        version: ``"v0"`` or ``"v1"``.

    Returns:
        Ordered ``{feature_name: value}``.
    """
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(image, dtype=np.float32))
    mask_arr = np.ones(image.shape, dtype=np.uint8)
    if version == "v0":
        mask = sitk.GetImageFromArray(mask_arr)
        mask.CopyInformation(img)
    else:
        mask_arr[0, 0] = 0  # pyradiomics full-mask workaround (frd-score v1)
        spacing = (*img.GetSpacing(), 1.0)
        img = sitk.GetImageFromArray(np.asarray(image, dtype=np.float32)[None])
        img.SetSpacing(spacing)
        mask = sitk.GetImageFromArray(mask_arr[None])
        mask.SetSpacing(spacing)
    output = _pyradiomics_extractor(version).execute(img, mask)
    feats: dict[str, float] = {}
    for key, value in output.items():
        if "diagnostics" not in key:
            feats[key.replace("original_", "")] = float(value)
        elif version == "v1":
            try:
                feats[key] = float(value)
            except (TypeError, ValueError):
                pass
    return feats


def _features_of(args: tuple[np.ndarray, str]) -> list[float]:
    image, version = args
    return list(radiomics_features(image, version).values())


def _features_of_chunk(images: np.ndarray, version: str) -> list[list[float]]:
    """Features of a ``(K, H, W)`` chunk of images, one row per image (a Dask task)."""
    return [list(radiomics_features(image, version).values()) for image in images]


def _features_on_client(arrays: np.ndarray, version: str, client: Client, chunk_size: int | None) -> list[list[float]]:
    """Map :func:`_features_of_chunk` over a Dask cluster and gather the rows in input order."""
    if chunk_size is None:
        threads = max(1, sum(client.nthreads().values()))
        chunk_size = max(1, math.ceil(len(arrays) / (4 * threads)))
    chunks = [arrays[i : i + chunk_size] for i in range(0, len(arrays), chunk_size)]
    futures = client.map(_features_of_chunk, chunks, version=version, pure=False)
    return [row for chunk in client.gather(futures) for row in chunk]


def frd_v0_normalize(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint min-max to ``V0_NORM_RANGE``; constant columns -> mid-range; NaN -> mid-range."""
    lo, hi = V0_NORM_RANGE
    base = np.concatenate([real, fake])
    with np.errstate(all="ignore"):
        mn, mx = np.nanmin(base, 0), np.nanmax(base, 0)
    outs = []
    for f in (real, fake):
        g = f.copy()
        ok = ~np.isnan(mn) & ~np.isnan(mx)
        const = ok & (mx - mn == 0)
        scale = ok & ~const
        g[:, const] = 0.5 * (hi - lo) + lo
        g[:, scale] = (f[:, scale] - mn[scale]) / (mx[scale] - mn[scale]) * (hi - lo) + lo
        g[np.isnan(g)] = (lo + hi) / 2
        outs.append(g)
    return outs[0], outs[1]


def frd_v1_normalize(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop NaN rows, cast to float32, z-score w.r.t. the real set, drop NaN/inf columns."""
    sets = [f[~np.isnan(f).any(1)].astype(np.float32) for f in (real, fake)]
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(sets[0], 0), np.nanstd(sets[0], 0)
        outs = []
        for f in sets:
            g = f.copy()
            ok = ~np.isnan(mean) & ~np.isnan(std)
            g[:, ok] = (f[:, ok] - mean[ok]) / std[ok]
            outs.append(g)
    bad = np.zeros(outs[0].shape[1], dtype=bool)
    for g in outs:
        bad |= ~np.isfinite(g).all(0)
    return outs[0][:, ~bad], outs[1][:, ~bad]


class _RadiomicsBase(FeatureExtractor):
    version: ClassVar[str]
    native_size = 0  # unused: images keep their stored size
    channels = 1

    def __init__(
        self,
        weights: Path | None,
        device: torch.device,
        num_workers: int | None = None,
        client: Client | None = None,
        chunk_size: int | None = None,
    ) -> None:
        """A radiomics extractor running serially, on a local process pool or on a Dask cluster.

        Args:
            weights: must be ``None`` (no weights).
            device: unused (CPU extraction), kept for the extractor contract.
            num_workers: local worker processes (default env ``BREASTFLOW_RADIOMICS_WORKERS`` or 1).
            client: a Dask ``distributed.Client``; when given, extraction runs on its cluster
                and ``num_workers`` is ignored.
            chunk_size: images per Dask task (default: about 4 tasks per worker thread).

        Raises:
            ValueError: weights given, or ``chunk_size < 1``.
        """
        if weights is not None:
            raise ValueError(f"{self.name} needs no weights, got weights={weights}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 images per Dask task, got {chunk_size}")
        self.device = device
        self.num_workers = num_workers if num_workers is not None else int(os.environ.get("BREASTFLOW_RADIOMICS_WORKERS", "1"))
        self.client = client
        self.chunk_size = chunk_size

    def weights_id(self) -> str:
        import radiomics

        return f"pyradiomics-{radiomics.__version__}-frd-{self.version}"

    def features_from_batch(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - extract() is overridden
        raise NotImplementedError("radiomics features are computed per image by extract()")

    def extract(
        self, images: torch.Tensor | np.ndarray, protocol: Protocol, data_range: float | None, batch_size: int = 32
    ) -> np.ndarray:
        """Per-image radiomic features ``(N, D)``; ``(N, 1, H, W)`` or ``(N, H, W)`` input, raw intensities.

        Raises:
            ValueError: multi-channel images or NaN values.
        """
        batch = as_image_batch(images)
        if batch.shape[1] != 1:
            raise ValueError(f"radiomics needs single-channel images, got {batch.shape[1]} channels")
        arrays = batch[:, 0].detach().cpu().numpy()
        if not np.isfinite(arrays).all():
            raise ValueError("images contain NaN or inf values")
        jobs = [(a, self.version) for a in arrays]
        if self.client is not None:
            rows = _features_on_client(arrays, self.version, self.client, self.chunk_size)
        elif self.num_workers <= 1:
            rows = [_features_of(j) for j in jobs]
        else:
            with ProcessPoolExecutor(self.num_workers) as pool:
                rows = list(pool.map(_features_of, jobs, chunksize=max(1, len(jobs) // (4 * self.num_workers))))
        return np.asarray(rows, dtype=np.float64)


@EXTRACTORS.register("radiomics")
class RadiomicsV1Extractor(_RadiomicsBase):
    """FRD v1 features (frd-score default); distance reported as ``log(d^2)``."""

    name = "radiomics"
    version = "v1"

    def normalize_sets(self, real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return frd_v1_normalize(real, fake)

    def finalize_distance(self, squared_distance: float) -> float:
        return float(np.log(squared_distance)) if squared_distance > 0 else float("-inf")


@EXTRACTORS.register("radiomics-v0")
class RadiomicsV0Extractor(_RadiomicsBase):
    """FRD v0 features; distance reported as the squared Fréchet distance."""

    name = "radiomics-v0"
    version = "v0"

    def normalize_sets(self, real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return frd_v0_normalize(real, fake)


def _radiomics_class(extractor: str) -> type[_RadiomicsBase]:
    """The registered radiomics extractor class ``extractor``; ValueError for any other extractor."""
    names = sorted(n for n in EXTRACTORS.names() if issubclass(EXTRACTORS.get(n), _RadiomicsBase))
    if extractor not in names:
        raise ValueError(f"{extractor!r} is not a radiomics extractor; use one of {', '.join(names)}")
    return EXTRACTORS.get(extractor)


def extract_radiomics_features(
    images: torch.Tensor | np.ndarray,
    extractor: str = "radiomics",
    client: Client | None = None,
    chunk_size: int | None = None,
    num_workers: int | None = None,
) -> np.ndarray:
    """FRD radiomic features of an image set, optionally on a Dask cluster.

    Args:
        images: ``(N, H, W)`` or ``(N, 1, H, W)`` raw intensities.
        extractor: ``"radiomics"`` (FRD v1) or ``"radiomics-v0"``.
        client: a Dask ``distributed.Client``; per-image extraction is mapped over
            its workers in chunks of ``chunk_size`` images and gathered in input order.
        chunk_size: images per Dask task (default: about 4 tasks per worker thread).
        num_workers: local process pool size when no client is given.

    Returns:
        ``(N, D)`` float64 features, identical to the serial path.

    Raises:
        RegistryError: ``extractor`` is not a radiomics extractor; ValueError: bad images or chunk size.
    """
    cls = _radiomics_class(extractor)
    net = cls(None, torch.device("cpu"), num_workers=num_workers, client=client, chunk_size=chunk_size)
    return net.extract(images, get_protocol("standard"), None)


def frd_from_features(real: np.ndarray, fake: np.ndarray, extractor: str = "radiomics") -> float:
    """FRD from features of :func:`extract_radiomics_features` (as ``frechet_distance`` computes it).

    Args:
        real: ``(N, D)`` real-set features; fake: ``(M, D)`` synthetic-set features.
        extractor: ``"radiomics"`` (v1, ``log(d^2)``) or ``"radiomics-v0"`` (``d^2``).

    Raises:
        ValueError: not a radiomics extractor, too few rows, NaN after normalisation.
    """
    from breastflow.metrics.frechet import features_to_frechet

    cls = _radiomics_class(extractor)
    net = cls(None, torch.device("cpu"))
    real_n, fake_n = net.normalize_sets(np.asarray(real, np.float64), np.asarray(fake, np.float64))
    return net.finalize_distance(features_to_frechet(real_n, fake_n))
