"""Vendor styles of the full-field digital mammography (FFDM) phantom.

A :class:`MammoVendorStyle` says how one vendor's *For Presentation* images
differ: detector matrix and pixel pitch, bit depth, photometric
interpretation, the tone curve that maps thickness-normalised attenuation to
stored values, quantum-noise level and typical exposure technique. Styles are
registered by name in :data:`MAMMO_VENDORS` (STYLE habit 2).

The figures are plausible, not vendor-certified: matrices and pitches follow
public spec sheets (GE Senographe DS 2294x1914 at 100 um; Hologic Selenia
Dimensions 18x24 cm format 3328x2560 at 70 um; Siemens Mammomat 18x24 cm
format at 85 um), bit depths follow the project brief (12-bit GE-style,
14-bit Hologic/Siemens-style), and tone curves are invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from breastflow.registry import Registry


class Photometric(str, Enum):
    """Photometric interpretation of the stored pixels.

    ``MONOCHROME2``: higher stored value displays brighter (dense tissue bright).
    ``MONOCHROME1``: higher stored value displays darker; such files carry
    ``PresentationLUTShape = INVERSE`` and a reader must invert to display.
    """

    MONOCHROME1 = "MONOCHROME1"
    MONOCHROME2 = "MONOCHROME2"


class ToneCurve(str, Enum):
    """Shape of the vendor's presentation processing curve on ``a in [0, 1]``."""

    SIGMOID = "sigmoid"  # contrast concentrated around the fat/gland transition
    POWER = "power"  # a ** gamma: darker fat, long bright tail


@dataclass(frozen=True)
class MammoVendorStyle:
    """How one vendor writes For Presentation mammograms.

    Attributes:
        name: registry key (lower case).
        manufacturer: DICOM ``Manufacturer``.
        model: DICOM ``ManufacturerModelName``.
        software: DICOM ``SoftwareVersions``.
        detector_type: DICOM ``DetectorType`` (``DIRECT`` a-Se, ``SCINTILLATOR`` CsI).
        realistic_shape: ``(rows, cols)`` of the realistic profile (portrait).
        pixel_spacing_mm: detector pitch at the realistic matrix (mm).
        bits_stored: ``BitsStored`` (12-16).
        photometric: stored photometric interpretation.
        tone: tone-curve family; ``tone_param`` is its steepness (sigmoid,
            width of the transition) or exponent (power).
        tone_centre: sigmoid centre in thickness-normalised attenuation.
        background: stored value of air (before any MONOCHROME1 inversion),
            as a fraction of the maximum stored value.
        noise_sigma: quantum-noise std in normalised attenuation at fat level.
        anode: DICOM ``AnodeTargetMaterial``; ``filter_material`` likewise.
        kvp_at_50mm: tube voltage for a 50 mm breast; +0.15 kV per extra mm.
        source_detector_mm: ``DistanceSourceToDetector``.
        legacy_codes: write SNOMED codes with the legacy ``SRT`` designator
            (``R-10242``), as older archives hold them, instead of ``SCT``.
    """

    name: str
    manufacturer: str
    model: str
    software: str
    detector_type: str
    realistic_shape: tuple[int, int]
    pixel_spacing_mm: float
    bits_stored: int
    photometric: Photometric
    tone: ToneCurve
    tone_param: float
    tone_centre: float
    background: float
    noise_sigma: float
    anode: str
    filter_material: str
    kvp_at_50mm: float
    source_detector_mm: float
    legacy_codes: bool

    def __post_init__(self) -> None:
        if not 12 <= self.bits_stored <= 16:
            raise ValueError(f"vendor {self.name!r}: bits_stored must be 12-16, got {self.bits_stored}")
        rows, cols = self.realistic_shape
        if rows <= cols:
            raise ValueError(f"vendor {self.name!r}: mammograms are portrait, got {rows}x{cols}")

    @property
    def max_value(self) -> int:
        """Largest stored value, ``2**bits_stored - 1``."""
        return (1 << self.bits_stored) - 1

    def tiny_shape(self, rows: int = 256) -> tuple[int, int]:
        """A small matrix with this vendor's aspect ratio (even number of columns)."""
        r, c = self.realistic_shape
        return rows, 2 * round(rows * c / r / 2)

    def tone_map(self, a: np.ndarray) -> np.ndarray:
        """Presentation curve: normalised attenuation ``a`` -> display fraction in [0, 1].

        Args:
            a: attenuation divided by that of fully glandular tissue at the
                compressed thickness; air 0, fat ~0.56, gland ~1, any shape.
        """
        a = np.clip(a, 0.0, 1.3, dtype=np.float32)
        if self.tone is ToneCurve.SIGMOID:
            lo, hi = (1.0 / (1.0 + np.exp(-(v - self.tone_centre) / self.tone_param)) for v in (0.0, 1.3))
            y = 1.0 / (1.0 + np.exp(-(a - self.tone_centre) / self.tone_param))
            return ((y - lo) / (hi - lo)).astype(np.float32)
        return ((a / 1.3) ** self.tone_param).astype(np.float32)


MAMMO_VENDORS: Registry[MammoVendorStyle] = Registry("mammography vendor style")

for _style in (
    MammoVendorStyle(
        name="ge",
        manufacturer="GE MEDICAL SYSTEMS",
        model="Senographe DS",
        software="ADS_43.10.1",
        detector_type="SCINTILLATOR",
        realistic_shape=(2294, 1914),
        pixel_spacing_mm=0.1,
        bits_stored=12,
        photometric=Photometric.MONOCHROME2,
        tone=ToneCurve.SIGMOID,
        tone_param=0.16,
        tone_centre=0.70,
        background=0.0,
        noise_sigma=0.010,
        anode="RHODIUM",
        filter_material="RHODIUM",
        kvp_at_50mm=29.0,
        source_detector_mm=660.0,
        legacy_codes=True,
    ),
    MammoVendorStyle(
        name="hologic",
        manufacturer="HOLOGIC, Inc.",
        model="Selenia Dimensions",
        software="1.9.2.3",
        detector_type="DIRECT",
        realistic_shape=(3328, 2560),
        pixel_spacing_mm=0.07,
        bits_stored=14,
        photometric=Photometric.MONOCHROME2,
        tone=ToneCurve.POWER,
        tone_param=2.2,
        tone_centre=0.0,
        background=0.02,
        noise_sigma=0.006,
        anode="TUNGSTEN",
        filter_material="RHODIUM",
        kvp_at_50mm=30.0,
        source_detector_mm=700.0,
        legacy_codes=False,
    ),
    MammoVendorStyle(
        name="siemens",
        manufacturer="SIEMENS",
        model="Mammomat Inspiration",
        software="VB30A",
        detector_type="DIRECT",
        realistic_shape=(2816, 2212),
        pixel_spacing_mm=0.085,
        bits_stored=14,
        photometric=Photometric.MONOCHROME1,
        tone=ToneCurve.SIGMOID,
        tone_param=0.22,
        tone_centre=0.78,
        background=0.0,
        noise_sigma=0.008,
        anode="TUNGSTEN",
        filter_material="RHODIUM",
        kvp_at_50mm=28.0,
        source_detector_mm=650.0,
        legacy_codes=False,
    ),
):
    MAMMO_VENDORS.add(_style.name, _style)


def present(attenuation: np.ndarray, breast: np.ndarray, style: MammoVendorStyle,
            rng: np.random.Generator) -> np.ndarray:
    """Detector noise and presentation processing: attenuation -> stored pixels.

    Quantum noise is Gaussian in the log domain with a std that grows as
    ``exp(mu t / 2)`` (fewer photons behind dense tissue); air is set to the
    vendor's flat background, as processed For Presentation images are.

    Args:
        attenuation: normalised attenuation ``a``, float32 ``(rows, cols)``.
        breast: bool mask ``(rows, cols)``; pixels outside get the background.
        style: vendor style (bit depth, tone curve, photometric, noise).
        rng: generator, consumed deterministically.

    Returns:
        uint16 ``(rows, cols)`` in ``[0, 2**bits_stored - 1]``, already inverted
        for MONOCHROME1 styles.

    Raises:
        ValueError: if the two arrays differ in shape.
    """
    if attenuation.shape != breast.shape:
        raise ValueError(f"attenuation {attenuation.shape} and mask {breast.shape} differ in shape")
    noise = rng.standard_normal(attenuation.shape, dtype=np.float32)
    sigma = np.float32(style.noise_sigma) * np.exp(np.float32(2.0) * (attenuation - np.float32(0.56)))
    shown = style.tone_map(attenuation + sigma * noise)
    top, floor = 0.95 * style.max_value, style.background * style.max_value
    values = np.where(breast, floor + shown * (top - floor), floor)
    pixels = np.rint(np.clip(values, 0, style.max_value)).astype(np.uint16)
    if style.photometric is Photometric.MONOCHROME1:
        pixels = np.uint16(style.max_value) - pixels
    return pixels
