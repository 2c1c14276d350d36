"""One exception hierarchy for everything that can be wrong with DICOM input.

Every error carries a machine-readable :class:`Reason` code (for the ingest
report, the quarantine list and the CLI exit status) and a human message that
names the file or series it concerns. Messages name *paths* and technical
values only, never header values that could identify a patient (names, IDs,
dates): they end up in logs and reports.

:class:`IngestProblem` is the plain, JSON-able record of an error; functions
that process a batch (e.g. :func:`breastflow.dicom.discover.probe_headers`)
return problems instead of raising, so one bad file never stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from breastflow.dicom.header import InstanceHeader


class Reason(str, Enum):
    """Why an input was rejected (stable codes; used in reports and catalogs)."""

    NOT_DICOM = "not-dicom"
    TRUNCATED = "truncated"
    NO_PIXEL_DATA = "no-pixel-data"
    UNSUPPORTED_SOP_CLASS = "unsupported-sop-class"
    UNSUPPORTED_IMAGE = "unsupported-image"
    INCONSISTENT_GEOMETRY = "inconsistent-geometry"
    DUPLICATE_SLICE = "duplicate-slice"
    MISSING_SLICE = "missing-slice"
    INCONSISTENT_RESCALE = "inconsistent-rescale"
    UNDECODABLE_TRANSFER_SYNTAX = "undecodable-transfer-syntax"
    NO_PRE_CONTRAST = "no-pre-contrast"
    UNREADABLE = "unreadable"
    CONFLICTING_DUPLICATE = "conflicting-duplicate"
    INCOMPLETE_SERIES = "incomplete-series"
    MISSING_PATIENT_ID = "missing-patient-id"
    MOSAIC_UNSUPPORTED = "mosaic-unsupported"
    MIXED_CLASSIC_ENHANCED = "mixed-classic-enhanced"
    NO_FRAME_POSITIONS = "no-frame-positions"
    STUDY_PLANNING_ERROR = "study-planning-error"


class IngestError(Exception):
    """Base of all DICOM input errors.

    Args:
        message: what is wrong and, where useful, how to fix it.
        where: the file path/URL or series description the error concerns
            (a path or ``"series <n> (<k> files, first <path>)"``); never PHI.
    """

    reason: Reason = Reason.UNREADABLE
    #: Study/Series Instance UID of the file when its header parsed, and the whole
    #: header when it parsed to the end (PHI; memory only, set by the probe so
    #: planning can tie a rejected file to its series).
    study_uid: str = ""
    series_uid: str = ""
    header: InstanceHeader | None = None

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)

    def to_problem(self) -> IngestProblem:
        """The JSON-able record of this error (carrying the memory-only UIDs, if set)."""
        return IngestProblem(reason=self.reason, where=self.where or "", message=self.message,
                             study_uid=self.study_uid, series_uid=self.series_uid, header=self.header)


class NotDicom(IngestError):
    """The file is not a DICOM Part 10 object (no preamble/'DICM', unparsable)."""

    reason = Reason.NOT_DICOM


class Truncated(IngestError):
    """The file ends before its declared content (header or pixel data)."""

    reason = Reason.TRUNCATED


class NoPixelData(IngestError):
    """An image object without a Pixel Data element."""

    reason = Reason.NO_PIXEL_DATA


class UnsupportedSOPClass(IngestError):
    """A SOP class breastflow does not ingest (SR, RT plan, presentation state ...)."""

    reason = Reason.UNSUPPORTED_SOP_CLASS


class UnsupportedImage(IngestError):
    """A supported SOP class with an image we cannot store losslessly as one
    grey-level volume (colour, float pixels, several samples per pixel)."""

    reason = Reason.UNSUPPORTED_IMAGE


class InconsistentGeometry(IngestError):
    """Slices disagree on orientation, matrix, pixel spacing, or lack positions."""

    reason = Reason.INCONSISTENT_GEOMETRY


class DuplicateSlice(IngestError):
    """Two slices sit at the same position along the slice normal."""

    reason = Reason.DUPLICATE_SLICE


class MissingSlice(IngestError):
    """A gap in the slice positions (spacing not uniform within tolerance)."""

    reason = Reason.MISSING_SLICE


class InconsistentRescale(IngestError):
    """Per-slice rescale slope/intercept that cannot be applied exactly in integers."""

    reason = Reason.INCONSISTENT_RESCALE


class UndecodableTransferSyntax(IngestError):
    """Pixel data that no installed handler can decode (missing plugin or corrupt stream)."""

    reason = Reason.UNDECODABLE_TRANSFER_SYNTAX


class NoPreContrast(IngestError):
    """An MRI study in which no series qualifies as the pre-contrast acquisition."""

    reason = Reason.NO_PRE_CONTRAST


class ConflictingDuplicate(IngestError):
    """Two files carry the same SOPInstanceUID but different pixel data (neither is chosen)."""

    reason = Reason.CONFLICTING_DUPLICATE


class IncompleteSeries(IngestError):
    """Some files of a series were rejected, so the series is not committed (never stored short)."""

    reason = Reason.INCOMPLETE_SERIES


class MissingPatientId(IngestError):
    """A study whose PatientID is empty or absent cannot be pseudonymised to a patient."""

    reason = Reason.MISSING_PATIENT_ID


class MosaicUnsupported(IngestError):
    """A Siemens mosaic image that cannot be un-mosaicked into a volume."""

    reason = Reason.MOSAIC_UNSUPPORTED


class MixedClassicEnhanced(IngestError):
    """Classic single-frame and enhanced multi-frame objects share one SeriesInstanceUID."""

    reason = Reason.MIXED_CLASSIC_ENHANCED


class NoFramePositions(IngestError):
    """An enhanced multi-frame object whose frames carry no per-frame plane positions."""

    reason = Reason.NO_FRAME_POSITIONS


@dataclass(frozen=True)
class IngestProblem:
    """A rejected input, as a plain record.

    Attributes:
        reason: the machine-readable code.
        where: file path/URL or series locator (no PHI).
        message: human explanation.
        study_uid, series_uid: the rejected file's raw UIDs when its header parsed
            ("" otherwise). PHI, memory only: never serialised by :meth:`to_dict`;
            planning uses them to mark the file's series incomplete.
        header: the rejected file's whole header when it parsed to the end (pixel
            data cut short, conflicting duplicate), else ``None``; memory only.
            Planning groups and classifies it with its series so the series keeps
            its role (it is then withdrawn, never read).
    """

    reason: Reason
    where: str
    message: str
    study_uid: str = field(default="", repr=False, compare=False)
    series_uid: str = field(default="", repr=False, compare=False)
    header: InstanceHeader | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, str]:
        """JSON-able form (``reason`` as its string code; the memory-only UIDs left out)."""
        return {"reason": self.reason.value, "where": self.where, "message": self.message}
