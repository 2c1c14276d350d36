"""A minimal DICOM tag scanner for the planning probe (pydicom's result, ~10x cheaper).

Planning reads the header of every file, and pydicom's full parse (a
``DataElement`` per element, value conversion, validation hooks) cost ~1 ms per
file, more than dcm2niix spends on the whole conversion of that file. This
scanner walks the element headers of one Part 10 file up to the Pixel Data
element, keeps the raw bytes of the few tags :func:`header_from_dataset` reads
(:data:`WANTED`), converts them exactly as pydicom 3 does (same stripping,
splitting, numeric parsing) and hands them to the *same*
:func:`~breastflow.dicom.header.header_from_dataset`, so grouping, classification
and geometry see an identical :class:`~breastflow.dicom.header.InstanceHeader`.

It only takes the easy, common road and returns ``None`` (the caller then runs
pydicom) for anything else: no ``DICM`` preamble, big-endian or deflated
transfer syntaxes, enhanced multi-frame objects (functional-group sequences),
a wanted tag inside an undefined length or with a VR other than the
dictionary's, non-ASCII or ISO 2022 text, multi-valued dates, numbers pydicom
might read differently, tags out of order, or the end of the file before the
Pixel Data element. Equality with pydicom is tested on pydicom's own test
files, pydicom-data and random headers (``tests/dicom/test_fast_header.py``).
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass
from typing import IO

from pydicom import uid
from pydicom.datadict import dictionary_VR, tag_for_keyword

from breastflow.dicom.header import (
    ENHANCED_SOP_CLASSES,
    InstanceHeader,
    header_from_dataset,
)

#: Keywords :func:`header_from_dataset` reads from a non-enhanced object.
WANTED_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID", "Modality",
    "SeriesNumber", "InstanceNumber", "SeriesDescription", "ImageType", "ContrastBolusAgent",
    "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength", "EchoTime", "RepetitionTime",
    "FlipAngle", "ViewPosition", "ImageLaterality", "Laterality", "FrameLaterality", "Rows", "Columns",
    "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "SliceThickness", "SpacingBetweenSlices", "ImagePositionPatient",
    "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing", "RescaleSlope", "RescaleIntercept",
    "TemporalPositionIdentifier", "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime",
    "ContentDate", "ContentTime", "SeriesDate", "SeriesTime", "StudyDate",
    "TriggerTime", "NumberOfTemporalPositions",
    "BodyPartExamined", "ProtocolName", "StudyDescription", "ReceiveCoilName", "DiffusionBValue",
)
#: tag -> (keyword, dictionary VR) of the wanted elements.
WANTED: dict[int, tuple[str, str]] = {
    tag_for_keyword(k): (k, dictionary_VR(k)) for k in WANTED_KEYWORDS  # type: ignore[misc]
}
_CONVERTED_VRS = {"UI", "CS", "LO", "SH", "DS", "IS", "US", "DA", "TM", "DT", "FD"}
assert all(vr in _CONVERTED_VRS for _, vr in WANTED.values()), "a wanted tag has an unhandled VR"

_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
                        b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"})
_TS_TAG, _MEDIA_CLASS_TAG = 0x00020010, 0x00020002
_FIRST_READ = 8192
_MIN_READ = 16384
_DS = re.compile(r"[ ]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ ]*")
_IS = re.compile(r"[ ]*[+-]?\d{1,12}[ ]*")
_HTT = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<L")
_F64 = struct.Struct("<d")


class _Unsupported(Exception):
    """Internal: this file needs pydicom (never escapes this module)."""


@dataclass(frozen=True)
class ScannedHeader:
    """What the scanner found: the header and where Pixel Data starts.

    Attributes:
        header: identical to what pydicom + :func:`header_from_dataset` give.
        pixel_offset: file offset of the Pixel Data element's tag.
    """

    header: InstanceHeader
    pixel_offset: int


class _Meta(dict):
    """The file meta values, looked up by keyword like a pydicom ``FileMetaDataset``."""


class _Values(dict):
    """Converted values by keyword; ``get`` behaves like ``Dataset.get`` for header_from_dataset."""

    file_meta: _Meta


class _Reader:
    """A growable window over a binary handle (reads ahead, seeks over big unwanted values)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.base = 0
        self.buf = handle.read(_FIRST_READ)

    def window(self, pos: int, n: int) -> int:
        """Make ``[pos, pos + n)`` available; return its offset in ``self.buf``.

        Raises:
            _Unsupported: the file ends first.
        """
        end = self.base + len(self.buf)
        if pos + n <= end and pos >= self.base:
            return pos - self.base
        if self.base <= pos <= end:
            more = self.handle.read(max(n - (end - pos), _MIN_READ, len(self.buf)))
            self.buf = self.buf[pos - self.base:] + more
        else:
            self.handle.seek(pos)
            self.buf = self.handle.read(max(n, _MIN_READ))
        self.base = pos
        if len(self.buf) < n:
            raise _Unsupported("end of file")
        return 0


@functools.cache
def _dataset_encoding(syntax: str) -> bool:
    """Whether the data set after the file meta is implicit VR (little endian).

    Raises:
        _Unsupported: big endian, deflated or unknown transfer syntax.
    """
    if syntax == uid.ImplicitVRLittleEndian:
        return True
    ts = uid.UID(syntax)
    if syntax in (uid.ExplicitVRBigEndian, uid.DeflatedExplicitVRLittleEndian) or not ts.is_transfer_syntax:
        raise _Unsupported("transfer syntax")
    if ts.is_implicit_VR or not ts.is_little_endian or ts.is_deflated:
        raise _Unsupported("transfer syntax")
    return False


def _element_header(reader: _Reader, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, header length) of the element at ``pos``."""
    at = reader.window(pos, 12 if not implicit else 8)
    buf = reader.buf
    group, element = _HTT.unpack_from(buf, at)
    tag = group << 16 | element
    if implicit or group == 0xFFFE:
        return tag, None, _U32.unpack_from(buf, at + 4)[0], 8
    vr = buf[at + 4:at + 6]
    if vr in _SHORT_VRS:
        return tag, vr, _U16.unpack_from(buf, at + 6)[0], 8
    if vr in _LONG_VRS:
        return tag, vr, _U32.unpack_from(buf, at + 8)[0], 12
    raise _Unsupported("unknown VR")


def _skip_undefined(reader: _Reader, pos: int, implicit: bool) -> int:
    """Skip a sequence (or encapsulated value) of undefined length starting at ``pos``; return the end."""
    while True:
        tag, _, length, _ = _element_header(reader, pos, True)
        pos += 8
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise _Unsupported("malformed sequence")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # item of undefined length: a data set up to the item delimiter
            tag, vr, length, header_len = _element_header(reader, pos, implicit)
            if tag == _ITEM_END:
                pos += 8
                break
            pos += header_len
            if length == _UNDEFINED:
                pos = _skip_undefined(reader, pos, implicit or vr == b"UN")
            else:
                pos += length


def _split(text: str) -> str | list[str]:
    items = text.split("\\")
    return items[0] if len(items) == 1 else items


def _convert(raw: bytes, vr: str) -> object:
    """The value pydicom 3 gives for ``raw`` with ``vr`` (default settings), or :class:`_Unsupported`."""
    if vr == "US":
        if len(raw) == 2:
            return _U16.unpack(raw)[0]
        if not raw:
            return None
        raise _Unsupported("multi-valued US")
    if vr == "FD":
        if len(raw) == 8:
            return _F64.unpack(raw)[0]
        if not raw:
            return None
        raise _Unsupported("multi-valued or odd-length FD")
    if not raw.isascii() or b"\x1b" in raw:
        raise _Unsupported("non-ASCII text")
    text = raw.decode("ascii")
    if not raw:
        return None if vr in ("DS", "IS") else ""
    if vr in ("LO", "SH"):  # convert_text: each value right-stripped of NUL and space
        items = [v.rstrip("\0 ") for v in text.split("\\")]
        return items[0] if len(items) == 1 else items
    if vr in ("UI", "CS", "DA", "TM", "DT"):  # convert_UI / convert_string: multi_string
        value = _split(text.rstrip(" \x00"))
        if isinstance(value, list) and vr in ("DA", "TM", "DT"):
            raise _Unsupported("multi-valued date/time")
        return value
    if vr == "DS":
        items = text.strip().rstrip(" \x00").split("\\")
        if not all(_DS.fullmatch(v) for v in items):
            raise _Unsupported("DS")
        floats = [float(v) for v in items]
        return floats[0] if len(floats) == 1 else floats
    items = text.rstrip(" \x00").split("\\")  # IS
    if not all(_IS.fullmatch(v) for v in items):
        raise _Unsupported("IS")
    ints = [int(v) for v in items]
    return ints[0] if len(ints) == 1 else ints


def _read_meta(reader: _Reader) -> tuple[_Meta, int]:
    """File meta group (explicit VR little endian); returns it and the data set's offset."""
    if reader.buf[128:132] != b"DICM":
        raise _Unsupported("no DICM preamble")
    meta, pos = _Meta(), 132
    while True:
        at = reader.window(pos, 12)
        if _U16.unpack_from(reader.buf, at)[0] != 0x0002:
            return meta, pos
        tag, _, length, header_len = _element_header(reader, pos, False)
        if length == _UNDEFINED:
            raise _Unsupported("undefined length in file meta")
        if tag in (_TS_TAG, _MEDIA_CLASS_TAG):
            at = reader.window(pos + header_len, length)
            value = _convert(reader.buf[at:at + length], "UI")
            meta["TransferSyntaxUID" if tag == _TS_TAG else "MediaStorageSOPClassUID"] = value
        pos += header_len + length


def scan_header(handle: IO[bytes], path: str) -> ScannedHeader | None:
    """Scan one file's header up to Pixel Data; ``None`` when pydicom must read it instead.

    Args:
        handle: the file, opened for binary reading at offset 0 (seekable).
        path: its path/URL (recorded in the header).

    Returns:
        The header and the Pixel Data element's offset, or ``None`` (see the module docstring).
    """
    try:
        reader = _Reader(handle)
        meta, pos = _read_meta(reader)
        syntax = meta.get("TransferSyntaxUID")
        if not isinstance(syntax, str) or not syntax:
            return None
        implicit = _dataset_encoding(syntax)
        if implicit:  # pydicom switches to explicit VR when the data set is in fact explicit
            at = reader.window(pos, 8)
            if reader.buf[at + 4:at + 6] in _SHORT_VRS | _LONG_VRS:
                return None
        values, last = _Values(), -1
        while True:
            tag, vr, length, header_len = _element_header(reader, pos, implicit)
            if tag in _PIXEL_TAGS:
                break
            if tag <= last:
                return None
            last = tag
            wanted = WANTED.get(tag)
            if wanted is not None:
                keyword, dict_vr = wanted
                if length == _UNDEFINED or (vr is not None and vr.decode() != dict_vr):
                    return None
                at = reader.window(pos + header_len, length)
                values[keyword] = _convert(reader.buf[at:at + length], dict_vr)
            pos += header_len
            pos = _skip_undefined(reader, pos, implicit or vr == b"UN") if length == _UNDEFINED else pos + length
    except (_Unsupported, struct.error):
        return None
    sop_class = values.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")
    if isinstance(sop_class, str) and sop_class in ENHANCED_SOP_CLASSES or isinstance(sop_class, list):
        return None
    values.file_meta = meta
    return ScannedHeader(header=header_from_dataset(values, path), pixel_offset=pos)  # type: ignore[arg-type]
