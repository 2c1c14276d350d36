"""Typed configuration of a phantom cohort (validated once, saved beside it)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from breastflow.vocabulary import CurveType, LesionClass

__all__ = ["CurveType", "LesionClass", "Modality", "PhantomConfig", "Profile", "TransferSyntax"]


class Profile(str, Enum):
    """Size profile. ``TINY`` is for tests and demos (64-96 matrix, few slices);
    ``REALISTIC`` matches Duke-Breast-Cancer-MRI scale (320/448/512 matrix,
    ~100-180 slices) and clinical mammogram matrices."""

    TINY = "tiny"
    REALISTIC = "realistic"


class Modality(str, Enum):
    """What a phantom study holds: a bilateral DCE-MRI exam or a 4-view mammogram."""

    MRI = "mri"
    MAMMO = "mammo"


class TransferSyntax(str, Enum):
    """Transfer syntaxes the phantom writer can emit (all lossless)."""

    EXPLICIT_LE = "explicit-le"
    JPEG2000_LOSSLESS = "jpeg2000-lossless"
    JPEGLS_LOSSLESS = "jpegls-lossless"
    RLE = "rle"

    @property
    def uid(self) -> str:
        import pydicom.uid

        return {
            TransferSyntax.EXPLICIT_LE: pydicom.uid.ExplicitVRLittleEndian,
            TransferSyntax.JPEG2000_LOSSLESS: pydicom.uid.JPEG2000Lossless,
            TransferSyntax.JPEGLS_LOSSLESS: pydicom.uid.JPEGLSLossless,
            TransferSyntax.RLE: pydicom.uid.RLELossless,
        }[self]


class PhantomConfig(BaseModel):
    """Everything that determines a cohort; the same config gives byte-identical files.

    Attributes:
        studies: number of studies (>= 1).
        seed: master seed; study ``i`` draws from ``SeedSequence([seed, i])`` so
            studies are independent of each other and of the cohort size.
        profile: size profile.
        modality: MRI (DCE) or mammography.
        transfer_syntaxes: syntaxes to write; studies cycle through them in order,
            so ``[explicit-le]`` (default) writes uncompressed files only.
        t2_fraction: share of MRI studies that also get a T2-weighted series.
        multiphase_series: write each MRI study's DCE phases (pre and every
            post) as ONE series, as GE (VIBRANT MultiPhase) and Philips dynamic
            exports do: one SeriesInstanceUID and SeriesNumber, InstanceNumber
            running on across phases, and per phase TemporalPositionIdentifier,
            NumberOfTemporalPositions, TriggerTime and AcquisitionTime. Pixels
            are identical to the cohort written without it (same seed).
        lesion_t1_scale: multiplies every lesion's pre-contrast T1 signal ratio
            to FGT (drawn 0.84-0.94 malignant, 0.90-1.02 benign: lesions nearly
            isointense to FGT before contrast, as on most real fat-sat T1). 1.0
            (default) leaves the cohort unchanged; e.g. 0.7 makes every lesion a
            clearly hypointense mass, a controlled setting in which the
            pre-contrast image does carry where the lesion is (the learning
            experiments of ``docs/train_results.md``). The random draws are the
            same whatever the value.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    studies: int = Field(ge=1, le=100_000)
    seed: int = Field(ge=0)
    profile: Profile = Profile.TINY
    modality: Modality = Modality.MRI
    transfer_syntaxes: tuple[TransferSyntax, ...] = (TransferSyntax.EXPLICIT_LE,)
    t2_fraction: float = Field(default=0.3, ge=0.0, le=1.0)
    multiphase_series: bool = False
    lesion_t1_scale: float = Field(default=1.0, gt=0.0, le=2.0)
