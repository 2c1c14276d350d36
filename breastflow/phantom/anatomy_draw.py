"""Drawing one patient's anatomy: random shape parameters and the FGT density calibration.

:func:`draw_anatomy` draws an :class:`~breastflow.phantom.anatomy.Anatomy` from a
study's random generator (breasts, chest wall, thorax, texture fields, vessels)
and sets its FGT threshold so the glandular share of breast volume matches the
drawn density category (BI-RADS a-d).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from breastflow.phantom.anatomy import BREAST_EXTENT_MM, Anatomy, Breast
from breastflow.phantom.fields import draw_field
from breastflow.phantom.geometry import Grid
from breastflow.phantom.vessels import draw_breast_vessels, draw_chest_vessels

CALIBRATION_STEP_MM = 4.0


def _calibrated(anatomy: Anatomy) -> Anatomy:
    """Set ``fgt_threshold`` so FGT fills ``density`` of the breast volume (4 mm lattice).

    The FGT sigmoid is about a step at this resolution, so the threshold is the
    ``1 - share`` quantile of the texture level inside the breast, where
    ``share`` raises ``density`` by the volume the fat layers (never glandular)
    hold. Only the breast fields are evaluated (:meth:`Anatomy.breast_fields`).
    """
    s = CALIBRATION_STEP_MM
    y0 = float(np.floor(anatomy.anterior_extent() / s) * s) - s
    y1 = anatomy.chest_y + anatomy.chest_curve + s
    zs = [b.centre_z for b in anatomy.breasts]
    rz = max(b.radius_z for b in anatomy.breasts)
    z0 = min(zs) - rz
    grid = Grid(rows=int((y1 - y0) // s) + 1, cols=int(440 // s), n_slices=int(2 * rz // s) + 2,
                pixel_spacing=(s, s), slice_spacing=s, slice_thickness=s, origin=(-220.0, y0, z0))
    fields_ = anatomy.breast_fields(grid)
    breast = fields_.breast_fraction()
    fgt = fields_.fgt_fraction(-100.0)  # FGT wherever the fat layers allow it
    inside = breast > 0.5
    if not inside.any():
        return replace(anatomy, fgt_threshold=-100.0)
    eligible = inside & (fgt > 0.5 * breast)
    share = float(np.clip(anatomy.density * inside.sum() / max(eligible.sum(), 1), 0.02, 0.98))
    return replace(anatomy, fgt_threshold=float(np.quantile(fields_.level[eligible], 1.0 - share)))


def draw_anatomy(rng: np.random.Generator, detail_mm: float = 4.0) -> Anatomy:
    """Draw one patient's anatomy.

    Args:
        rng: the study generator (consumed deterministically).
        detail_mm: in-plane size of the finest glandular texture (use about one
            to two voxels; finer texture than the grid resolves only costs time).
    """
    half_width = float(rng.uniform(150.0, 172.0))
    depth = float(rng.uniform(190.0, 230.0))
    breast_depth = float(rng.uniform(140.0, 190.0))  # prone: the breasts hang into the coil
    radius_x = float(rng.uniform(60.0, 76.0))
    radius_z = float(rng.uniform(55.0, 78.0))
    separation = float(rng.uniform(78.0, 95.0))
    taper = float(rng.uniform(0.0, 0.2))
    roundness = float(rng.uniform(2.4, 3.6))
    breasts = tuple(
        Breast(
            centre_x=side * separation * float(rng.uniform(0.95, 1.05)),
            centre_z=float(rng.uniform(-6.0, 6.0)),
            radius_x=radius_x * float(rng.uniform(0.93, 1.07)),
            radius_z=radius_z * float(rng.uniform(0.93, 1.07)),
            depth=breast_depth * float(rng.uniform(0.92, 1.08)),
            tilt=float(rng.uniform(0.0, 0.12)),
            taper=taper * float(rng.uniform(0.9, 1.1)),
            roundness=roundness,
        )
        for side in (-1.0, 1.0)
    )
    density = float(rng.choice([0.15, 0.3, 0.5, 0.7], p=[0.1, 0.4, 0.4, 0.1]))
    anatomy = Anatomy(
        chest_y=0.0,
        chest_curve=float(rng.uniform(40.0, 70.0)),
        thorax_half_width=half_width,
        thorax_depth=depth,
        subcutaneous_mm=float(rng.uniform(6.0, 14.0)),
        skin_mm=float(rng.uniform(1.5, 2.5)),
        pectoral_mm=float(rng.uniform(8.0, 15.0)),
        rib_mm=float(rng.uniform(9.0, 13.0)),
        rib_period_mm=float(rng.uniform(24.0, 32.0)),
        rib_slope=float(rng.uniform(0.15, 0.35)),
        density=density,
        fgt_threshold=0.0,
        breasts=breasts,  # type: ignore[arg-type]
        heart_centre=(float(rng.uniform(10.0, 30.0)), float(rng.uniform(85.0, 105.0)),
                      float(rng.uniform(-70.0, -35.0))),
        heart_radii=(float(rng.uniform(58.0, 70.0)), float(rng.uniform(42.0, 52.0)), 60.0),
        heart_angle=float(rng.uniform(-0.7, -0.35)),
        myocardium_mm=float(rng.uniform(8.0, 12.0)),
        vessels=(),
        shape_field=draw_field(rng, (60.0, 60.0, 60.0)),
        fgt_coarse=draw_field(rng, (12.0, 20.0, 12.0), BREAST_EXTENT_MM),
        fgt_fine=draw_field(rng, (detail_mm, 4.0 * detail_mm, detail_mm), BREAST_EXTENT_MM),
        thorax_texture=draw_field(rng, (20.0, 20.0, 20.0)),
        bpe_texture=draw_field(rng, (1.5 * detail_mm,) * 3, BREAST_EXTENT_MM),
    )
    vessels = draw_chest_vessels(rng, anatomy)
    for b in anatomy.breasts:
        vessels += draw_breast_vessels(rng, anatomy, b, int(rng.integers(3, 7)))
    return replace(_calibrated(anatomy), vessels=tuple(vessels))  # vessels do not change the FGT share
