"""Fast writer for the many single-slice files of one series.

pydicom spends ~30 us encoding each data element, and a phantom MR slice has
~100 of them, of which only five change from slice to slice. A
:class:`SeriesFileEncoder` encodes the series-constant elements once, then
per slice encodes only the file meta group, SOP Instance UID, InstanceNumber,
ImagePositionPatient, SliceLocation and Pixel Data and splices them in tag
order. The bytes are identical to ``dicom_io.save(instance_dataset(...))``
(a test checks this for every transfer syntax), about 10x faster.
"""

from __future__ import annotations

import bisect
import itertools
import os
from pathlib import Path

import numpy as np
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import ExplicitVRLittleEndian

from breastflow.phantom.config import TransferSyntax
from breastflow.phantom.dicom_io import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION

_VARYING = (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)
_PIXEL_MODULE = ("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                 "BitsStored", "HighBit", "PixelRepresentation")


def _buffer() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    return fp


def set_pixel_module(ds: Dataset, rows: int, cols: int, bits_stored: int) -> None:
    """Write the Image Pixel module attributes (as ``dicom_io.set_pixels`` does), without pixels."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0


class SeriesFileEncoder:
    """Encodes the files of one series from a template.

    Args:
        template: every series-constant attribute, including the Image Pixel
            module (see :func:`set_pixel_module`), and none of the varying ones.
        syntax: transfer syntax of the files.
        element_cache: encoded elements keyed by ``(tag, VR, repr(value), encodings)``,
            shared by the encoders of one study so that the attributes its series
            have in common are encoded once (sequences are always encoded).

    Raises:
        ValueError: if the template holds a per-slice attribute or misses the pixel module.
    """

    def __init__(self, template: Dataset, syntax: TransferSyntax,
                 element_cache: dict[tuple[int, str, str, tuple[str, ...]], bytes] | None = None) -> None:
        clash = [hex(t) for t in _VARYING if t in template]
        if clash:
            raise ValueError(f"template must not contain per-slice attributes {clash}")
        missing = [k for k in _PIXEL_MODULE if k not in template]
        if missing:
            raise ValueError(f"template misses Image Pixel module attributes {missing}")
        self.syntax = syntax
        self.template = template
        self.sop_class = str(template.SOPClassUID)
        self.encodings = convert_encodings(template.get("SpecificCharacterSet", "ISO_IR 6"))
        tags, chunks = [], []
        cache = {} if element_cache is None else element_cache
        for tag in sorted(template.keys()):
            elem = template[tag]
            # sequences are not cached: their items are datasets whose repr may hide encoding details
            key = None if elem.VR == "SQ" else (int(elem.tag), elem.VR, repr(elem.value), tuple(self.encodings))
            chunk = cache.get(key) if key is not None else None
            if chunk is None:
                fp = _buffer()
                write_data_element(fp, elem, self.encodings)
                chunk = fp.getvalue()
                if key is not None:
                    cache[key] = chunk
            tags.append(int(elem.tag))
            chunks.append(chunk)
        # split the template's encoded elements where the varying ones go
        cuts = [bisect.bisect_left(tags, t) for t in _VARYING]
        bounds = [0, *cuts, len(chunks)]
        self.segments = [b"".join(chunks[a:b]) for a, b in itertools.pairwise(bounds)]
        # file meta group: everything but (0002,0003) MediaStorageSOPInstanceUID is constant
        head, tail = _buffer(), _buffer()
        for elem in (DataElement(0x00020001, "OB", b"\x00\x01"), DataElement(0x00020002, "UI", self.sop_class)):
            write_data_element(head, elem)
        for elem in (DataElement(0x00020010, "UI", syntax.uid),
                     DataElement(0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
                     DataElement(0x00020013, "SH", IMPLEMENTATION_VERSION)):
            write_data_element(tail, elem)
        self.meta_head, self.meta_tail = head.getvalue(), tail.getvalue()

    def _pixel_element(self, pixels: np.ndarray) -> DataElement:
        raw = np.ascontiguousarray(pixels, dtype=np.uint16).tobytes()
        if self.syntax is TransferSyntax.EXPLICIT_LE:
            return DataElement(0x7FE00010, "OW", raw)
        small = Dataset()
        for keyword in _PIXEL_MODULE:
            setattr(small, keyword, self.template[keyword].value)
        small.PixelData = raw
        small.file_meta = FileMetaDataset()
        small.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        small.compress(self.syntax.uid, generate_instance_uid=False)
        return small["PixelData"]

    def encode(self, sop_uid: str, instance_number: int, position: tuple[float, float, float],
               pixels: np.ndarray) -> bytes:
        """The complete Part 10 file of one slice.

        Args:
            sop_uid: SOPInstanceUID.
            instance_number: InstanceNumber.
            position: ImagePositionPatient (LPS mm); SliceLocation is its z.
            pixels: uint16 ``(rows, cols)`` with the template's Rows/Columns.

        Raises:
            ValueError: on a pixel shape or dtype mismatch.
        """
        if pixels.shape != (self.template.Rows, self.template.Columns) or pixels.dtype != np.uint16:
            raise ValueError(f"expected uint16 {(self.template.Rows, self.template.Columns)}, "
                             f"got {pixels.dtype} {pixels.shape}")
        uid = _text_value(sop_uid, b"\x00")
        pixel = self._pixel_bytes(pixels)
        meta_uid = _short(0x00020003, b"UI", uid)
        group = len(self.meta_head) + len(meta_uid) + len(self.meta_tail)
        z = round(position[2], 6)
        varying = (
            _short(0x00080018, b"UI", uid),
            _short(0x00200013, b"IS", _text_value(str(instance_number), b" ")),
            _short(0x00200032, b"DS", _text_value("\\".join(_ds(round(p, 6)) for p in position), b" ")),
            _short(0x00201041, b"DS", _text_value(_ds(z), b" ")),
            pixel,
        )
        parts = [_PREAMBLE, group.to_bytes(4, "little"), self.meta_head, meta_uid, self.meta_tail, self.segments[0]]
        for elem, segment in zip(varying, self.segments[1:]):
            parts += (elem, segment)
        return b"".join(parts)

    def _pixel_bytes(self, pixels: np.ndarray) -> bytes:
        if self.syntax is TransferSyntax.EXPLICIT_LE:
            raw = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
            return b"\xe0\x7f\x10\x00OW\x00\x00" + len(raw).to_bytes(4, "little") + raw
        fp = _buffer()
        write_data_element(fp, self._pixel_element(pixels), self.encodings)
        return fp.getvalue()

    def write(self, path: Path, sop_uid: str, instance_number: int, position: tuple[float, float, float],
              pixels: np.ndarray) -> None:
        """Encode one slice and write it to ``path`` (parent folder must exist)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, self.encode(sop_uid, instance_number, position, pixels))
        finally:
            os.close(fd)


_PREAMBLE = b"\x00" * 128 + b"DICM\x02\x00\x00\x00UL\x04\x00"


def _short(tag: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element with a 2-byte length (UI, IS, DS...)."""
    return (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little") + vr + len(value).to_bytes(
        2, "little") + value


def _text_value(text: str, pad: bytes) -> bytes:
    """ASCII value padded to even length (UI with NUL, text VRs with a space), as pydicom writes it."""
    raw = text.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


def _ds(value: float) -> str:
    """pydicom's DS string of a float (``str(DSfloat(value))``: the shortest repr)."""
    return repr(float(value))
