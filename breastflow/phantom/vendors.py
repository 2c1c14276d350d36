"""Scanner vendor styles: intensity scaling, noise, bias field and header habits.

Each :class:`VendorStyle` is registered in :data:`VENDORS` by name. The
differences are deliberate and learnable (what a harmonisation model must
undo, cf. Modanwal et al. 2021, paper 000):

================  ===================  =====================  ===================
                  GE                   Siemens                Philips
================  ===================  =====================  ===================
intensity scale   ~2600 per unit       ~750 per unit          ~1400 per unit (real)
fat suppression   residual fat 0.14    residual fat 0.06      residual fat 0.10
contrast gamma    1.0                  0.85 (flatter)         0.95
Rician sigma      1.2 % of FGT         3.5 % of FGT           2.2 % of FGT
bias field        strong A-P falloff   mild, L-R asymmetric   mild radial
BitsStored        16                   12                     12
RescaleSlope      1                    1                      1.6-2.6 (per study)
slice thickness   2 x spacing (ZIP2)   = spacing              = spacing
InstanceNumber    superior -> inferior inferior -> superior   superior -> inferior
================  ===================  =====================  ===================

The cohort mix is GE 50 % / Siemens 40 % / Philips 10 % (Duke is GE and
Siemens only; Philips adds a third domain). Noise sigma scales with
``1 / field_strength`` (3 T is ~0.7 x the 1.5 T noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from breastflow.registry import Registry


@dataclass(frozen=True)
class ScannerModel:
    """A scanner model name and its field strength in tesla."""

    name: str
    field_strength: float


@dataclass(frozen=True)
class VendorStyle:
    """How one vendor's scanners render and label a breast DCE exam.

    Attributes:
        key: registry name (``"ge"``, ``"siemens"``, ``"philips"``).
        manufacturer: DICOM Manufacturer string.
        models: scanner models (drawn uniformly).
        mix_weight: share of the cohort.
        scale: stored value per unit signal (before rescale), drawn +-15 % per study.
        fat_residual: fat signal after fat suppression (FGT = 0.42).
        gamma: exponent applied to the normalised signal (contrast habit).
        noise_sigma: Rician sigma as a fraction of FGT signal at 1.5 T.
        bias_ap, bias_lr, bias_radial: bias-field log-amplitudes (A-P slope,
            L-R slope, radial falloff).
        bits_stored: 12 or 16.
        rescale_slope_range: per-study RescaleSlope range (1, 1 for none).
        thickness_factor: SliceThickness / SpacingBetweenSlices.
        instances_descending_z: InstanceNumber 1 is the most superior slice.
        matrices: realistic-profile in-plane matrices to draw from.
        pre_description, post_description, t2_description: SeriesDescription
            habits; ``{n}`` is the post-contrast phase number (1-4), ``{ord}`` its ordinal.
        sequence_name, scanning_sequence, sequence_variant, scan_options: DCE sequence headers.
        t2_sequence_name: T2 sequence name.
        patient_position: PatientPosition (prone).
        series_base, series_step: SeriesNumber of the T2 series and the step to
            the next series (order T2, pre, post1..post4; numbers are kept when
            a series is absent).
    """

    key: str
    manufacturer: str
    models: tuple[ScannerModel, ...]
    mix_weight: float
    scale: float
    fat_residual: float
    gamma: float
    noise_sigma: float
    bias_ap: float
    bias_lr: float
    bias_radial: float
    bits_stored: int
    rescale_slope_range: tuple[float, float]
    thickness_factor: float
    instances_descending_z: bool
    matrices: tuple[int, ...]
    pre_description: str
    post_description: str
    t2_description: str
    sequence_name: str
    scanning_sequence: str
    sequence_variant: str
    scan_options: str
    t2_sequence_name: str
    patient_position: str
    series_base: int
    series_step: int

    def series_number(self, position: int) -> int:
        """SeriesNumber of series ``position`` (0 = T2, 1 = pre, 2.. = post1..)."""
        return self.series_base + position * self.series_step

    @property
    def max_stored(self) -> int:
        return (1 << self.bits_stored) - 1


VENDORS: Registry[VendorStyle] = Registry("vendor style")

VENDORS.add("ge", VendorStyle(
    key="ge", manufacturer="GE MEDICAL SYSTEMS",
    models=(ScannerModel("SIGNA HDxt", 1.5), ScannerModel("Optima MR450w", 1.5),
            ScannerModel("SIGNA EXCITE", 1.5), ScannerModel("DISCOVERY MR750", 3.0)),
    mix_weight=0.50, scale=2600.0, fat_residual=0.14, gamma=1.0, noise_sigma=0.012,
    bias_ap=0.45, bias_lr=0.05, bias_radial=0.10, bits_stored=16, rescale_slope_range=(1.0, 1.0),
    thickness_factor=2.0, instances_descending_z=True, matrices=(512, 512, 320),
    pre_description="Ax T1 FS pre", post_description="Ax Vibrant MultiPhase",
    t2_description="Ax T2 FSE", sequence_name="efgre3d", scanning_sequence="GR",
    sequence_variant="SS\\SK", scan_options="FAST_GEMS\\FS", t2_sequence_name="fse-xl",
    patient_position="FFP", series_base=3, series_step=1,
))
VENDORS.add("siemens", VendorStyle(
    key="siemens", manufacturer="SIEMENS",
    models=(ScannerModel("Avanto", 1.5), ScannerModel("Aera", 1.5),
            ScannerModel("TrioTim", 3.0), ScannerModel("Skyra", 3.0)),
    mix_weight=0.40, scale=750.0, fat_residual=0.06, gamma=0.85, noise_sigma=0.035,
    bias_ap=0.15, bias_lr=0.20, bias_radial=0.05, bits_stored=12, rescale_slope_range=(1.0, 1.0),
    thickness_factor=1.0, instances_descending_z=False, matrices=(448, 448, 512),
    pre_description="t1_fl3d_tra_dynVIEWS_spair_pre", post_description="t1_fl3d_tra_dynVIEWS_spair_{ord} pass",
    t2_description="t2_tse_tra", sequence_name="*fl3d1", scanning_sequence="GR",
    sequence_variant="SP\\SS\\OSP", scan_options="PFP\\FS", t2_sequence_name="*tse2d1_15",
    patient_position="HFP", series_base=5, series_step=2,
))
VENDORS.add("philips", VendorStyle(
    key="philips", manufacturer="Philips Medical Systems",
    models=(ScannerModel("Achieva", 1.5), ScannerModel("Ingenia", 3.0)),
    mix_weight=0.10, scale=1400.0, fat_residual=0.10, gamma=0.95, noise_sigma=0.022,
    bias_ap=0.10, bias_lr=0.05, bias_radial=0.25, bits_stored=12, rescale_slope_range=(1.6, 2.6),
    thickness_factor=1.0, instances_descending_z=True, matrices=(512, 480),
    pre_description="T1 FFE SPAIR pre", post_description="dyn eTHRIVE SPAIR {n}",
    t2_description="T2W_TSE_ax", sequence_name="T1FFE", scanning_sequence="GR",
    sequence_variant="SK\\SS", scan_options="FS", t2_sequence_name="TSE",
    patient_position="HFP", series_base=301, series_step=100,
))


def draw_vendor(rng: np.random.Generator) -> VendorStyle:
    """Draw a vendor style according to the cohort mix (deterministic given ``rng``)."""
    names = VENDORS.names()
    weights = np.array([VENDORS.get(n).mix_weight for n in names])
    return VENDORS.get(names[int(rng.choice(len(names), p=weights / weights.sum()))])


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 4 -> '4th'."""
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n if n < 20 else n % 10, 'th') }"
