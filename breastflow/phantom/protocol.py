"""The acquisition protocol of one phantom MRI study: scanner, grids, phase timing.

Drawn first from the study generator, so everything else (anatomy, lesions,
noise) can depend on it. Timing follows Duke-Breast-Cancer-MRI (paper 003):
one fat-saturated T1 pre-contrast acquisition, then 1-4 post-contrast
acquisitions back to back (about 1.5-2.5 min each; Duke's median spacing is
131 s), with the contrast bolus injected at the end of the pre-contrast scan.
About 15 % of studies stop after 2-3 post-contrast phases.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from breastflow.phantom.config import Profile
from breastflow.phantom.geometry import Grid, make_grid
from breastflow.phantom.vendors import ScannerModel, VendorStyle, draw_vendor

# Probability of 1, 2, 3, 4 post-contrast phases.
POST_PHASE_P = (0.02, 0.06, 0.09, 0.83)
FOV_MM = (280.0, 400.0)  # limits of the square FOV fitted to the breasts' width


@dataclass(frozen=True)
class Protocol:
    """Acquisition choices of one study.

    Attributes:
        vendor: vendor style.
        model: scanner model (name and field strength).
        scale: stored value per unit signal for this study.
        rescale_slope: DICOM RescaleSlope (stored -> real value).
        fov_mm: square in-plane field of view (see :meth:`fitted_to`).
        fov_margin: FOV / breast width chosen by the technologist (the breasts fill the width).
        top_margin_mm: air in front of the nipples at the top of the image.
        matrix: rows = cols of the DCE series.
        n_slices: slices of the DCE series.
        slice_spacing: mm between DCE slice centres.
        n_post: number of post-contrast phases (1-4).
        phase_seconds: duration of one dynamic acquisition.
        pre_start_s: pre-contrast start, seconds after StudyTime.
        injection_delay_s: bolus start after the end of the pre-contrast scan.
        repetition_time, echo_time, flip_angle: DCE sequence parameters (ms, ms, deg).
        has_t2: whether a T2-weighted series is written.
        t2_matrix, t2_slice_thickness: T2 grid choices.
        station_name, device_serial: equipment identifiers (treated as PHI).
    """

    vendor: VendorStyle
    model: ScannerModel
    scale: float
    rescale_slope: float
    fov_mm: float
    fov_margin: float
    top_margin_mm: float
    matrix: int
    n_slices: int
    slice_spacing: float
    n_post: int
    phase_seconds: float
    pre_start_s: float
    injection_delay_s: float
    repetition_time: float
    echo_time: float
    flip_angle: float
    has_t2: bool
    t2_matrix: int
    t2_slice_thickness: float
    station_name: str
    device_serial: str

    def post_times_min(self) -> np.ndarray:
        """Minutes from bolus injection to the k-space centre of each post phase, ``(n_post,)``."""
        k = np.arange(1, self.n_post + 1)
        return ((k - 0.5) * self.phase_seconds - self.injection_delay_s) / 60.0

    def phase_start_s(self, phase: int) -> float:
        """Start of phase ``phase`` (0 = pre) in seconds after StudyTime."""
        return self.pre_start_s + phase * self.phase_seconds

    def fitted_to(self, breast_width_mm: float) -> Protocol:
        """This protocol with the FOV fitted to the patient, as a technologist sets it.

        The square FOV is ``fov_margin`` times the L-R extent of both breasts,
        clipped to ``FOV_MM``, so the breasts fill the image width.

        Raises:
            ValueError: if ``breast_width_mm`` is not positive.
        """
        if breast_width_mm <= 0:
            raise ValueError(f"breast width must be > 0 mm, got {breast_width_mm}")
        fov = float(np.clip(breast_width_mm * self.fov_margin, *FOV_MM))
        return replace(self, fov_mm=round(fov, 3))

    def fov_centre_y(self, anterior_extent_mm: float) -> float:
        """LPS y of the FOV centre that leaves ``top_margin_mm`` of air in front of the nipples."""
        return anterior_extent_mm - self.top_margin_mm + self.fov_mm / 2.0

    def dce_grid(self, centre_y: float) -> Grid:
        """The grid of the pre- and post-contrast series."""
        thickness = self.slice_spacing * self.vendor.thickness_factor
        return make_grid(self.matrix, self.matrix, self.n_slices, (self.fov_mm, self.fov_mm),
                         self.slice_spacing, thickness, centre_y=centre_y)

    def t2_grid(self, centre_y: float, coverage_mm: float) -> Grid:
        """The grid of the T2 series (own matrix, thicker slices, same coverage)."""
        n = max(8, round(coverage_mm / self.t2_slice_thickness))
        return make_grid(self.t2_matrix, self.t2_matrix, n, (self.fov_mm, self.fov_mm),
                         self.t2_slice_thickness, self.t2_slice_thickness, centre_y=centre_y)


def draw_protocol(rng: np.random.Generator, profile: Profile, t2_fraction: float) -> Protocol:
    """Draw a study's protocol.

    Args:
        rng: the study generator.
        profile: TINY (64-96 matrix, 16-32 slices of ~4-9 mm) or REALISTIC
            (320/448/512 matrix, ~100-180 slices of 1.0-1.2 mm).
        t2_fraction: probability of a T2 series.
    """
    vendor = draw_vendor(rng)
    model = vendor.models[int(rng.integers(len(vendor.models)))]
    fov = float(rng.uniform(300.0, 380.0))
    coverage = float(rng.uniform(150.0, 185.0))
    if profile is Profile.REALISTIC:
        matrix = int(vendor.matrices[int(rng.integers(len(vendor.matrices)))])
        spacing = float(rng.choice([1.0, 1.1, 1.2]))
        n_slices = int(np.clip(round(coverage / spacing), 100, 180))
        t2_matrix = int(rng.choice([320, 384, 448, 512]))
        t2_thickness = float(rng.choice([3.0, 3.5, 4.0]))
    else:
        matrix = int(rng.choice([64, 80, 96]))
        n_slices = int(rng.integers(16, 33))
        spacing = coverage / n_slices
        t2_matrix = int(rng.choice([64, 80, 96]))
        t2_thickness = float(spacing * rng.choice([1.25, 1.5]))
    slope_lo, slope_hi = vendor.rescale_slope_range
    tesla = model.field_strength
    return Protocol(
        vendor=vendor,
        model=model,
        scale=vendor.scale * float(rng.uniform(0.85, 1.15)),
        rescale_slope=round(float(rng.uniform(slope_lo, slope_hi)), 5),
        fov_mm=fov,
        fov_margin=float(rng.uniform(1.02, 1.1)),
        top_margin_mm=float(rng.uniform(6.0, 22.0)),
        matrix=matrix,
        n_slices=n_slices,
        slice_spacing=round(spacing, 4),
        n_post=int(rng.choice([1, 2, 3, 4], p=POST_PHASE_P)),
        phase_seconds=float(rng.uniform(90.0, 150.0)),
        pre_start_s=float(rng.integers(300, 900)),
        injection_delay_s=float(rng.uniform(0.0, 20.0)),
        repetition_time=round(float(rng.uniform(3.5, 6.0) if tesla < 2 else rng.uniform(3.0, 4.5)), 3),
        echo_time=round(float(rng.uniform(1.5, 2.5)), 3),
        flip_angle=float(rng.choice([10.0, 12.0, 15.0])),
        has_t2=bool(rng.random() < t2_fraction),
        t2_matrix=t2_matrix,
        t2_slice_thickness=round(t2_thickness, 4),
        station_name=f"MR{int(rng.integers(100, 999))}{vendor.key.upper()[:2]}",
        device_serial=f"{int(rng.integers(10**6, 10**7))}",
    )
