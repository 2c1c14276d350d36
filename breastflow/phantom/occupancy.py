"""Soft (partial-volume) occupancies from signed distances, for the anatomy's tissue maps.

A shape given by a signed distance ``d`` (mm, positive inside) occupies a voxel
of size ``h`` by ``clip(0.5 + d / h, 0, 1)``: a one-voxel ramp across the edge.
"""

from __future__ import annotations

import numpy as np


def clip_fraction(a: np.ndarray) -> np.ndarray:
    """``a`` clipped to [0, 1] as float32."""
    return np.clip(a, 0.0, 1.0).astype(np.float32, copy=False)


def occupancy(dist_mm: np.ndarray, h: float) -> np.ndarray:
    """Soft occupancy from a signed distance (positive inside), one voxel ramp, float32."""
    out = np.multiply(dist_mm, np.float32(1.0 / h), dtype=np.float32)
    out += np.float32(0.5)
    np.maximum(out, 0.0, out=out)
    return np.minimum(out, 1.0, out=out)


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, float32."""
    return (0.5 * (1.0 + np.tanh(0.5 * a))).astype(np.float32, copy=False)


def add_ellipsoid(out: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, centre: tuple[float, float, float],
                  radii: tuple[float, float, float], h: float) -> None:
    """``out = max(out, ellipsoid_occupancy(...))`` in place, evaluated only in the ellipsoid's bounding box.

    ``x, y, z`` are the grid's axes shaped ``(1, 1, X)``, ``(1, Y, 1)``, ``(Z, 1, 1)``.
    Outside the box (half-widths ``radius * (1 + h / min(radii))``) the occupancy is 0.
    """
    grow = 1.0 + h / min(radii)
    box = []
    for axis, c, r in ((z.ravel(), centre[2], radii[2]), (y.ravel(), centre[1], radii[1]),
                       (x.ravel(), centre[0], radii[0])):
        idx = np.nonzero(np.abs(axis - c) <= r * grow)[0]
        if idx.size == 0:
            return
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    bz, by, bx = box
    region = out[bz, by, bx]
    np.maximum(region, ellipsoid_occupancy(x[:, :, bx], y[:, by, :], z[bz], centre, radii, h), out=region)


def ellipsoid_occupancy(x, y, z, centre, radii, h):  # type: ignore[no-untyped-def]
    """Soft occupancy of an axis-aligned ellipsoid (approximate distance ``(1 - q) * min(radii)``)."""
    q = np.sqrt(((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
                + ((z - centre[2]) / radii[2]) ** 2)
    return occupancy((1.0 - q) * min(radii), h)
