"""Fréchet distance between feature distributions (FID_Img, FID_Rad, FRD).

    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

(Dowson & Landau 1982; Heusel et al. 2017, Eq. 6). The trace of the matrix
square root is computed without forming it:
``Tr((S_1 S_2)^(1/2)) = sum_i sqrt(lambda_i)`` with ``lambda_i`` the eigenvalues
of the symmetric PSD matrix ``S_1^(1/2) S_2 S_1^(1/2)`` (same spectrum as
``S_1 S_2``). Both steps use symmetric eigen-decompositions (``eigh``), so no
complex parts appear and tiny negative eigenvalues from round-off are clipped
to zero instead of producing NaN.

When the features themselves are at hand and the sets are small relative to
the feature dimension, :func:`features_to_frechet` uses the exact identity
``Tr((S_1 S_2)^(1/2)) = ||A_1 A_2^T||_* / sqrt((n_1 - 1)(n_2 - 1))`` (nuclear
norm; ``A_i`` the centred ``(n_i, D)`` feature matrices), whose singular values
are non-negative by construction and which costs ``O(n_1 n_2 D)`` instead of
``O(D^3)``.

Stages are named as in torch-fidelity: :func:`features_to_statistics`,
:func:`statistics_to_frechet`, and the end-to-end :func:`frechet_distance`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from breastflow.metrics.cache import FeatureCache, content_key
from breastflow.metrics.features import build_extractor
from breastflow.metrics.features.base import as_image_batch
from breastflow.metrics.protocols import Protocol, get_protocol


def features_to_statistics(features: np.ndarray, what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof=1) covariance of a feature set.

    Args:
        features: ``(N, D)`` features, N >= 2.
        what: name used in error messages.

    Returns:
        ``mu`` ``(D,)`` and ``sigma`` ``(D, D)``, float64.

    Raises:
        ValueError: wrong rank, N < 2, NaN or inf values.
    """
    f = _checked(features, what)
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr((S_1 S_2)^(1/2))`` for symmetric PSD ``S_1``, ``S_2`` ``(D, D)``."""
    a = _sym_sqrt(sigma1)
    m = a @ sigma2 @ a
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def statistics_to_frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between two Gaussians.

    Args:
        mu1, mu2: means ``(D,)``.
        sigma1, sigma2: covariances ``(D, D)``.

    Returns:
        ``d^2 >= 0`` (clipped at 0 against round-off).

    Raises:
        ValueError: shape mismatch or non-finite statistics.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    for arr, what in ((mu1, "mu1"), (mu2, "mu2"), (sigma1, "sigma1"), (sigma2, "sigma2")):
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contains NaN or inf")
    diff = mu1 - mu2
    d2 = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(max(d2, 0.0))


def features_to_frechet(features1: np.ndarray, features2: np.ndarray) -> float:
    """Squared Fréchet distance between the Gaussians fitted to two feature sets.

    Picks the cheaper exact route: the sample-space nuclear norm when
    ``n_1 n_2 min(n_1, n_2) < D^3``, else :func:`statistics_to_frechet`.

    Args:
        features1: ``(N1, D)``, N1 >= 2.
        features2: ``(N2, D)``, N2 >= 2.

    Raises:
        ValueError: N < 2, NaNs, dimension mismatch.
    """
    f1 = _checked(features1, "first feature set")
    f2 = _checked(features2, "second feature set")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    (n1, d), n2 = f1.shape, f2.shape[0]
    if n1 * n2 * min(n1, n2) >= d**3:
        return statistics_to_frechet(*features_to_statistics(f1), *features_to_statistics(f2))
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a1, a2 = f1 - mu1, f2 - mu2
    c1, c2 = n1 - 1, n2 - 1
    tr1 = float(np.einsum("ij,ij->", a1, a1)) / c1
    tr2 = float(np.einsum("ij,ij->", a2, a2)) / c2
    nuclear = float(np.linalg.svd(a1 @ a2.T, compute_uv=False).sum()) / np.sqrt(c1 * c2)
    diff = mu1 - mu2
    return float(max(diff @ diff + tr1 + tr2 - 2 * nuclear, 0.0))


def _checked(features: np.ndarray, what: str) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"{what}: a covariance estimate needs at least 2 samples, got N = {f.shape[0]}")
    if not np.isfinite(f).all():
        rows = np.flatnonzero(~np.isfinite(f).all(1))
        raise ValueError(f"{what} contain NaN or inf in rows {rows[:10].tolist()}")
    return f


def frechet_distance(
    real_images: torch.Tensor | np.ndarray,
    fake_images: torch.Tensor | np.ndarray,
    extractor: str = "inception",
    protocol: Protocol | str = "standard",
    cache: FeatureCache | None = None,
    real_key: str | None = None,
    data_range: float | None = None,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    weights: Path | str | None = None,
) -> float:
    """Fréchet distance between a real and a synthetic image set.

    Args:
        real_images: ``(N, H, W)`` or ``(N, C, H, W)``, N >= 2.
        fake_images: ``(M, H', W')`` or ``(M, C, H', W')``, M >= 2.
        extractor: feature-extractor registry name (``inception`` -> FID_Img,
            ``radimagenet`` -> FID_Rad, ``radiomics`` / ``radiomics-v0`` -> FRD).
        protocol: preprocessing protocol or its name.
        cache: optional real-feature cache; real features are then extracted
            once per (dataset, extractor, weights, protocol).
        real_key: content hash or version of the real dataset (e.g. the store's
            version hash). When ``None`` and a cache is given, the sha256 of the
            real pixel data is used.
        data_range: stored intensity range (required by the ``standard`` protocol).
        batch_size: images per forward pass.
        device: torch device.
        weights: weight file for the extractor (see each extractor).

    Returns:
        The distance as the extractor reports it (squared Fréchet distance for
        FID; log-transformed for FRD v1).

    Raises:
        ValueError: empty sets, N < 2, NaNs; RegistryError: unknown names;
        WeightsNotFoundError: missing weight files.
    """
    proto = get_protocol(protocol)
    for images, what in ((real_images, "real"), (fake_images, "fake")):
        n = as_image_batch(images).shape[0]
        if n < 2:
            raise ValueError(f"{what} set: a covariance estimate needs at least 2 samples, got N = {n}")
    net = build_extractor(extractor, weights=weights, device=device)

    def real_features() -> np.ndarray:
        return net.extract(real_images, proto, data_range, batch_size)

    if cache is not None:
        key = content_key(
            dataset=real_key if real_key is not None else images_sha256(real_images),
            extractor=net.name,
            weights=net.weights_id(),
            protocol=proto,
            data_range=data_range,
        )
        real = cache.get_or_compute(key, real_features)
    else:
        real = real_features()
    fake = net.extract(fake_images, proto, data_range, batch_size)
    real, fake = net.normalize_sets(real, fake)
    return net.finalize_distance(features_to_frechet(real, fake))


def images_sha256(images: torch.Tensor | np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of an image array (a content key for in-memory sets)."""
    import hashlib

    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()
