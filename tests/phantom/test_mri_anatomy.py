"""Anatomy of the MRI phantom: Duke-like layout, FGT density, vessels, warped texture sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from phantom_reading import read_mask, read_study
from scipy import ndimage
from scipy.spatial import cKDTree

from breastflow.phantom.anatomy_draw import draw_anatomy
from breastflow.phantom.config import PhantomConfig, Profile, TransferSyntax
from breastflow.phantom.fields import draw_field
from breastflow.phantom.geometry import make_grid
from breastflow.phantom.mri import study_rng, write_mri_study
from breastflow.phantom.phi import draw_identity
from breastflow.phantom.protocol import FOV_MM, draw_protocol
from breastflow.phantom.vessels import Vessel, tortuous_path, vessel_occupancy


def _study_grid(seed: int, index: int, rows: int = 96):  # type: ignore[no-untyped-def]
    """The anatomy and a coarse DCE-like grid placed exactly as ``write_mri_study`` places it."""
    rng = study_rng(seed, index)
    draw_identity(rng, index)
    protocol = draw_protocol(rng, Profile.TINY, 0.0)
    anatomy = draw_anatomy(rng, detail_mm=7.0)
    protocol = protocol.fitted_to(anatomy.width())
    grid = make_grid(rows, rows, 24, (protocol.fov_mm, protocol.fov_mm), 7.0, 7.0,
                     centre_y=protocol.fov_centre_y(anatomy.anterior_extent()))
    return anatomy, grid


@pytest.mark.parametrize("index", range(6))
def test_breasts_fill_the_width_and_upper_half(index: int) -> None:
    """Duke-like layout: breasts span most of the FOV width and its upper part; chest wall below."""
    anatomy, grid = _study_grid(5, index)
    maps = anatomy.tissue_maps(grid)
    k = int(np.argmin(np.abs(grid.axis_mm(0) - anatomy.breasts[0].centre_z)))
    breast = maps.breast[k] > 0.5
    cols = np.nonzero(breast.any(axis=0))[0]
    rows = np.nonzero(breast.any(axis=1))[0]
    assert (cols[-1] - cols[0] + 1) / grid.cols > 0.8
    assert rows[0] / grid.rows < 0.12  # nipples near the top of the image
    assert 0.4 < (rows[-1] + 1) / grid.rows < 0.8  # breast tissue ends at the chest wall, lower half
    # the chest wall (pectoralis) lies below the breasts; lungs only further down
    muscle_rows = np.nonzero((maps.muscle[k] > 0.5).any(axis=1))[0]
    lung_rows = np.nonzero((maps.lung[k] > 0.5).any(axis=1))[0]
    assert muscle_rows.size and muscle_rows[0] > rows[0] + 0.3 * grid.rows
    if lung_rows.size:
        assert lung_rows[0] > muscle_rows[0]
    # air in the top corners (background noise statistics are read there)
    body = maps.body()
    assert body[:, :4, :4].max() < 0.01 and body[:, :4, -4:].max() < 0.01


@pytest.mark.parametrize("index", range(5))
def test_fgt_share_matches_density_category(index: int) -> None:
    anatomy, grid = _study_grid(8, index, rows=128)
    maps = anatomy.tissue_maps(grid)
    share = float(maps.fgt.sum() / maps.breast.sum())
    assert share == pytest.approx(anatomy.density, abs=0.08), (anatomy.density, share)
    # glandular tissue sits deeper inside the breast than fat does (central cone)
    depth = ndimage.distance_transform_edt(maps.breast > 0.5)
    assert np.average(depth, weights=maps.fgt) > np.average(depth, weights=maps.fat * (maps.breast > 0.5))


def test_sample_converging_matches_map_coordinates() -> None:
    field = draw_field(np.random.default_rng(1), (6.0, 18.0, 6.0), ((-60.0, 60.0), (-120.0, 40.0), (-80.0, 80.0)))
    grid = make_grid(20, 24, 9, (150.0, 180.0), 8.0, 8.0, centre_y=-30.0)
    apex, length = (10.0, -100.0, 5.0), 90.0
    fast = field.sample_converging(grid, apex, length)
    zz, yy, xx = np.meshgrid(grid.axis_mm(0), grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    g = length / np.maximum(yy - apex[1], 0.12 * length)
    warped = (apex[2] + (zz - apex[2]) * g, yy, apex[0] + (xx - apex[0]) * g)
    coords = [np.clip((a - s) / st, 0.0, n - 1.000001)
              for a, s, st, n in zip(warped, field.start, field.step, field.values.shape)]
    reference = ndimage.map_coordinates(field.values, coords, order=1)
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    with pytest.raises(ValueError, match="length_mm"):
        field.sample_converging(grid, apex, 0.0)


def test_vessel_occupancy_matches_brute_force_distance() -> None:
    rng = np.random.default_rng(2)
    path = tortuous_path(rng, np.array([-20.0, -30.0, -25.0]), np.array([25.0, 10.0, 20.0]), (2.0, 5.0), (10.0, 20.0))
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).max() <= 0.5 + 1e-9
    vessel = Vessel(points=path, radii=np.full(path.shape[0], 2.0))
    grid = make_grid(40, 44, 30, (80.0, 88.0), 2.0, 2.0, centre_y=-10.0)
    occ = vessel_occupancy((vessel,), grid)
    zz, yy, xx = np.meshgrid(grid.axis_mm(0), grid.axis_mm(1), grid.axis_mm(2), indexing="ij")
    dist, _ = cKDTree(path).query(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1))
    reference = np.clip(0.5 + (2.0 - dist.reshape(grid.shape)) / 2.0, 0.0, 1.0)
    # every 2nd point (1 mm apart) is used at h = 2 mm: in the ramp (d >= 1 mm) a distance is
    # overestimated by <= s^2 / (8 d) = 0.125 mm, i.e. occupancy by <= 0.0625 (+ path curvature)
    np.testing.assert_allclose(occ, reference, atol=0.1)
    assert np.all(occ <= reference + 1e-5)  # a subset of the points can only be farther away
    assert occ.sum() == pytest.approx(reference.sum(), rel=0.02) and reference.sum() > 100
    fine = make_grid(40, 44, 30, (20.0, 22.0), 0.5, 0.5, centre_y=-10.0)  # stride 1: exact
    zz, yy, xx = np.meshgrid(fine.axis_mm(0), fine.axis_mm(1), fine.axis_mm(2), indexing="ij")
    dist, _ = cKDTree(path).query(np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1))
    exact = np.clip(0.5 + (2.0 - dist.reshape(fine.shape)) / 0.5, 0.0, 1.0)
    np.testing.assert_allclose(vessel_occupancy((vessel,), fine), exact, atol=1e-5)
    with pytest.raises(ValueError, match="radii"):
        Vessel(points=path, radii=np.ones(3))


def test_fov_fits_the_breasts() -> None:
    rng = np.random.default_rng(0)
    protocol = draw_protocol(rng, Profile.TINY, 0.0)
    assert protocol.fitted_to(320.0).fov_mm == pytest.approx(320.0 * protocol.fov_margin, abs=1e-3)
    assert protocol.fitted_to(10.0).fov_mm == FOV_MM[0] and protocol.fitted_to(900.0).fov_mm == FOV_MM[1]
    with pytest.raises(ValueError, match="breast width"):
        protocol.fitted_to(0.0)


def test_breast_vessels_enhance_early_and_are_not_lesions(tmp_path: Path) -> None:
    """Voxels of in-breast vessels enhance more than FGT on post1 and carry no lesion label."""
    config = PhantomConfig(studies=1, seed=2, profile=Profile.TINY, t2_fraction=0.0)
    result = write_mri_study(tmp_path, 0, config, TransferSyntax.EXPLICIT_LE)
    pd.DataFrame([result.study]).to_csv(tmp_path / "cohort.csv", index=False)
    series = read_study(tmp_path, "PH0000")
    mask, _ = read_mask(tmp_path, "PH0000")
    rng = study_rng(2, 0)
    draw_identity(rng, 0)
    protocol = draw_protocol(rng, Profile.TINY, 0.0)
    anatomy = draw_anatomy(rng, detail_mm=7.0)
    protocol = protocol.fitted_to(anatomy.width())
    grid = protocol.dce_grid(protocol.fov_centre_y(anatomy.anterior_extent()))
    assert series["pre"].volume.shape == grid.shape
    maps = anatomy.tissue_maps(grid)
    vessel = (maps.blood > 0.4) & (maps.breast > 0.5) & (mask == 0)  # partial volume at 3-6 mm voxels
    gland = (maps.fgt > 0.9) & (mask == 0)
    assert vessel.sum() >= 5 and gland.sum() > 50
    sub = series["post1"].volume - series["pre"].volume
    assert np.median(sub[vessel]) > 3.0 * np.median(sub[gland])


def test_tiny_profile_lesions_span_several_voxels(mri_cohort: Path) -> None:
    lesions = pd.read_csv(mri_cohort / "lesions.csv")
    assert len(lesions) >= 5
    width = np.minimum(lesions["end_row"] - lesions["start_row"], lesions["end_column"] - lesions["start_column"]) + 1
    assert width.min() >= 3 and np.median(width) >= 4
    assert lesions["n_voxels"].min() >= 10
