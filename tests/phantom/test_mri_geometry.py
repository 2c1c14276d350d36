"""Grids, affines and smooth fields against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from breastflow.phantom.fields import draw_field
from breastflow.phantom.geometry import make_grid, slab


def test_grid_affine_and_slab() -> None:
    grid = make_grid(8, 10, 5, (80.0, 100.0), 2.0, 4.0, centre_z=10.0, centre_y=-3.0)
    assert grid.shape == (5, 8, 10) and grid.pixel_spacing == (10.0, 10.0)
    # centre of the FOV is at (0, centre_y, centre_z)
    centre = grid.affine_lps() @ [4.5, 3.5, 2.0, 1.0]
    np.testing.assert_allclose(centre[:3], [0.0, -3.0, 10.0])
    np.testing.assert_allclose(grid.affine_ras()[:3, :3], np.diag([-10.0, -10.0, 2.0]))
    sub = slab(grid, 2, 4)
    assert sub.n_slices == 2 and sub.position(0) == grid.position(2)
    with pytest.raises(ValueError):
        slab(grid, 3, 3)


def test_smooth_field_sampling_matches_map_coordinates() -> None:
    field = draw_field(np.random.default_rng(0), (20.0, 30.0, 20.0))
    assert abs(float(field.values.std()) - 1.0) < 1e-3
    grid = make_grid(12, 16, 7, (200.0, 260.0), 9.0, 9.0, centre_z=5.0, centre_y=20.0)
    fast = field.sample(grid)
    zz, yy, xx = np.meshgrid(grid.axis_mm(0), grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    coords = [(a - s) / st for a, s, st in zip((zz, yy, xx), field.start, field.step)]
    reference = ndimage.map_coordinates(field.values, coords, order=1)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    with pytest.raises(ValueError):
        draw_field(np.random.default_rng(0), (0.0, 1.0, 1.0))
