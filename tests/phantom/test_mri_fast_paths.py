"""The phantom's fast paths against plain reference computations (same values, less work)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from breastflow.phantom.anatomy import NIPPLE_MM
from breastflow.phantom.anatomy_draw import draw_anatomy
from breastflow.phantom.config import PhantomConfig, TransferSyntax
from breastflow.phantom.fields import draw_field
from breastflow.phantom.geometry import Grid, make_grid
from breastflow.phantom.lesions import _depth_inside
from breastflow.phantom.mr_render import nonzero_box
from breastflow.phantom.mri import write_mri_study
from breastflow.phantom.occupancy import add_ellipsoid, ellipsoid_occupancy
from breastflow.phantom.series_writer import SeriesFileEncoder, set_pixel_module
from breastflow.phantom.vessels import POINT_STEP_MM, vessel_occupancy


def _vessel_occupancy_per_point(vessels, grid: Grid) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Reference: one box per centre-line point, as the phantom did before vectorising."""
    out = np.zeros(grid.shape, dtype=np.float32)
    spacing = np.asarray(grid.spacing_zyx)
    h = float(spacing.min())
    axes = [grid.axis_mm(a) for a in range(3)]
    origin = np.array([axes[0][0], axes[1][0], axes[2][0]])
    shape = np.asarray(grid.shape)
    stride = max(1, int(0.5 * h / POINT_STEP_MM))
    for vessel in vessels:
        zyx = np.concatenate([vessel.points[::stride], vessel.points[-1:]])[:, ::-1]
        radii = np.concatenate([vessel.radii[::stride], vessel.radii[-1:]])
        lo = np.maximum(np.ceil((zyx - (radii + h)[:, None] - origin) / spacing).astype(int), 0)
        hi = np.minimum(np.floor((zyx + (radii + h)[:, None] - origin) / spacing).astype(int) + 1, shape)
        for p, r, a, b in zip(zyx, radii, lo, hi):
            if np.any(b <= a):
                continue
            dz = (axes[0][a[0]:b[0]] - p[0])[:, None, None]
            dy = (axes[1][a[1]:b[1]] - p[1])[None, :, None]
            dx = (axes[2][a[2]:b[2]] - p[2])[None, None, :]
            occ = (0.5 + r / h) - np.sqrt(dz * dz + dy * dy + dx * dx) / h
            box = out[a[0]:b[0], a[1]:b[1], a[2]:b[2]]
            np.maximum(box, np.clip(occ, 0.0, 1.0), out=box)
    return out


@pytest.fixture(scope="module")
def patient():  # type: ignore[no-untyped-def]
    return draw_anatomy(np.random.default_rng(11), detail_mm=7.0)


@pytest.mark.parametrize(("rows", "pixel_mm", "slices", "slice_mm"), [(80, 4.5, 24, 7.0), (160, 1.5, 30, 2.0)])
def test_vectorised_vessels_equal_per_point_boxes(patient, rows: int, pixel_mm: float, slices: int,  # type: ignore[no-untyped-def]
                                                  slice_mm: float) -> None:
    anatomy = patient
    grid = make_grid(rows, rows, slices, (rows * pixel_mm,) * 2, slice_mm, slice_mm, centre_y=-60.0)
    fast = vessel_occupancy(anatomy.vessels, grid)
    reference = _vessel_occupancy_per_point(anatomy.vessels, grid)
    assert reference.sum() > 10  # the vessels cross this grid (some leave it)
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)


def test_breast_fields_equal_tissue_maps(patient) -> None:  # type: ignore[no-untyped-def]
    anatomy = patient
    grid = make_grid(72, 72, 20, (380.0, 380.0), 8.0, 8.0, centre_y=-80.0)
    maps = anatomy.tissue_maps(grid)
    fields_ = anatomy.breast_fields(grid)
    assert maps.breast.sum() > 100
    np.testing.assert_array_equal(fields_.breast_fraction(), maps.breast)
    fgt = fields_.fgt_fraction(anatomy.fgt_threshold, vessel_occupancy(anatomy.vessels, grid))
    np.testing.assert_array_equal(fgt, maps.fgt)
    assert 0 < fgt.sum() < maps.breast.sum()


def test_nipple_box_equals_whole_grid_evaluation(patient) -> None:  # type: ignore[no-untyped-def]
    anatomy = patient
    grid = make_grid(200, 200, 40, (300.0, 300.0), 1.5, 1.5, centre_y=-100.0)
    z = grid.axis_mm(0).astype(np.float32)[:, None, None]
    y = grid.axis_mm(1).astype(np.float32)[None, :, None]
    x = grid.axis_mm(2).astype(np.float32)[None, None, :]
    fast = np.zeros(grid.shape, dtype=np.float32)
    reference = np.zeros(grid.shape, dtype=np.float32)
    for b in anatomy.breasts:
        nx, ny, nz = anatomy.nipple(b)
        centre, radii = (nx, ny + anatomy.skin_mm, nz), (NIPPLE_MM[0], NIPPLE_MM[1] + anatomy.skin_mm, NIPPLE_MM[0])
        add_ellipsoid(fast, x, y, z, centre, radii, 1.5)
        np.maximum(reference, ellipsoid_occupancy(x, y, z, centre, radii, 1.5), out=reference)
    assert reference.sum() > 50
    np.testing.assert_array_equal(fast, reference)


def test_depth_inside_equals_whole_array_edt() -> None:
    rng = np.random.default_rng(3)
    for k in range(6):
        blob = ndimage.gaussian_filter(rng.standard_normal((20, 30, 26)), 3.0) > 0.05
        if k % 2:
            blob[:, :, :3] = True  # touches the array border
        np.testing.assert_allclose(_depth_inside(blob, 4.0), ndimage.distance_transform_edt(blob, sampling=4.0))
    assert not _depth_inside(np.zeros((3, 4, 5), dtype=bool), 4.0).any()


def test_field_sampled_on_a_box_equals_the_whole_grid_sample() -> None:
    field = draw_field(np.random.default_rng(4), (9.0, 9.0, 9.0), ((-80.0, 80.0),) * 3)
    grid = make_grid(40, 44, 16, (120.0, 132.0), 4.0, 4.0)
    box = (slice(3, 11), slice(5, 30), slice(0, 17))
    np.testing.assert_allclose(field.sample(grid, box), field.sample(grid)[box], atol=2e-6)
    volume = np.zeros((5, 6, 7))
    assert nonzero_box(volume) is None
    volume[1, 2:4, 6] = 1.0
    assert nonzero_box(volume) == (slice(1, 2), slice(2, 4), slice(6, 7))


@pytest.mark.parametrize("syntax", [TransferSyntax.EXPLICIT_LE, TransferSyntax.RLE])
def test_shared_element_cache_gives_the_same_bytes(tmp_path: Path, syntax: TransferSyntax) -> None:
    write_mri_study(tmp_path / "ref", 0, PhantomConfig(studies=1, seed=9), TransferSyntax.EXPLICIT_LE)
    templates = []
    for series in sorted((tmp_path / "ref" / "dicom").glob("*/*"))[:2]:
        src = pydicom.dcmread(next(series.glob("*.dcm")))
        template = pydicom.Dataset()
        for elem in src:
            if elem.tag not in (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010):
                template.add(elem)
        set_pixel_module(template, src.Rows, src.Columns, src.BitsStored)
        templates.append(template)
    assert templates[0].SeriesInstanceUID != templates[1].SeriesInstanceUID
    pixels = np.arange(templates[0].Rows * templates[0].Columns, dtype=np.uint16).reshape(
        templates[0].Rows, templates[0].Columns)
    cache: dict = {}
    for template in templates:
        shared = SeriesFileEncoder(template, syntax, cache).encode("1.2.3.4", 7, (-1.5, 2.25, 30.0), pixels)
        alone = SeriesFileEncoder(template, syntax).encode("1.2.3.4", 7, (-1.5, 2.25, 30.0), pixels)
        assert shared == alone
    assert len(cache) > 50
