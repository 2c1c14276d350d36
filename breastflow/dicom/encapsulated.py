"""Check that a file's encapsulated (compressed) pixel data is complete before it is decoded.

pydicom's frame iterator (:func:`pydicom.pixels.iter_pixels`) decodes whatever
bytes a truncated file still holds: a JPEG Lossless or JPEG-LS frame cut short
decodes without error into a full-size frame of wrong values (measured: 50-85 %
of the voxels wrong after a cut at half the pixel data). So before decoding,
the encapsulated Pixel Data element (PS3.5 A.4) is walked item by item, reading
only the 8-byte item headers and the last bytes of each frame:

* every item (Basic Offset Table, then fragments) must lie inside the file;
* the undefined-length value must end with a sequence delimiter that is
  actually present (a cut exactly at an item boundary leaves every item whole);
* for the JPEG family (JPEG, JPEG-LS, JPEG 2000, HTJ2K) every frame's last
  fragment must end with the end-of-image / end-of-codestream marker ``FFD9``
  (then zero padding, or one pad byte of another value: writers pad odd
  fragments with ``00`` or ``FF``), which catches a stream cut inside a
  container whose lengths were written afterwards. ``FFD9`` cannot occur
  inside the entropy-coded data of these codecs (byte stuffing), so a stream
  cut elsewhere never ends with it by chance.

RLE needs no marker check: its segment offsets are checked by the decoder,
which raises. The decoded frame shape is checked against Rows x Columns by
:mod:`breastflow.dicom.volume`.
"""

from __future__ import annotations

import os
import struct
from typing import IO

import pydicom
from pydicom import uid

from breastflow.dicom.errors import Truncated, UndecodableTransferSyntax
from breastflow.dicom.fast_header import scan_header
from breastflow.dicom.header import InstanceHeader

#: Syntaxes whose frames end with the ``FFD9`` marker (JPEG EOI, JPEG 2000 / HTJ2K EOC).
EOI_SYNTAXES: frozenset[str] = frozenset({
    uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless, uid.JPEGLosslessSV1,
    uid.JPEGLSLossless, uid.JPEGLSNearLossless, uid.JPEG2000Lossless, uid.JPEG2000,
    uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K,
})
_EOI = b"\xff\xd9"
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_ITEM_HEADER = struct.Struct("<HHL")
_TAIL = 8  # bytes read at the end of a frame (marker plus padding)


def is_encapsulated(syntax: str) -> bool:
    """Whether pixel data in ``syntax`` is encapsulated (compressed fragments), deflate excluded."""
    ts = uid.UID(syntax)
    return ts.is_transfer_syntax and ts.is_encapsulated and not ts.is_deflated


def pixel_data_offset(handle: IO[bytes], path: str) -> int:
    """File offset of the Pixel Data element's tag.

    The fast scanner finds it for classic objects; anything it declines
    (enhanced multi-frame ...) is read by pydicom up to the pixels.

    Raises:
        Truncated: the file has no Pixel Data element (it ends first).
    """
    handle.seek(0)
    scanned = scan_header(handle, path)
    if scanned is not None:
        return scanned.pixel_offset
    handle.seek(0)
    pydicom.dcmread(handle, stop_before_pixels=True)
    return handle.tell()


def _read_exact(handle: IO[bytes], pos: int, n: int) -> bytes:
    handle.seek(pos)
    return handle.read(n)


def _frame_ends(fragments: list[tuple[int, int]], offsets: list[int], n_frames: int) -> list[tuple[int, int]]:
    """``(frame, index of its last fragment)`` for the frames whose end the item layout tells."""
    last = len(fragments) - 1
    if n_frames <= 1:
        return [(0, last)]
    if len(fragments) == n_frames:
        return list(enumerate(range(n_frames)))
    if len(offsets) == n_frames and offsets[0] == 0:  # Basic Offset Table: where each frame starts
        first_item = fragments[0][0] - 8
        starts = {pos - 8 - first_item: i for i, (pos, _) in enumerate(fragments)}
        if all(o in starts for o in offsets):
            begins = [starts[o] for o in offsets]
            return list(enumerate([b - 1 for b in begins[1:]] + [last]))
    return [(n_frames - 1, last)]  # frames of unknown extent: the file's last one must still end whole


def check_encapsulated(handle: IO[bytes], header: InstanceHeader, pixel_offset: int | None = None) -> None:
    """Raise unless every encapsulated frame of the file is complete (see the module docstring).

    Does nothing for native or deflated transfer syntaxes.

    Args:
        handle: the file, opened for binary reading (seekable); left at an arbitrary position.
        header: its probed header (path, transfer syntax, number of frames).
        pixel_offset: file offset of the Pixel Data element when known (``None``: found here).

    Raises:
        Truncated: an item runs past the end of the file, the sequence delimiter
            is missing, or a JPEG-family frame lacks its end marker.
        UndecodableTransferSyntax: the encapsulated value is malformed (not items).
    """
    if not is_encapsulated(header.transfer_syntax):
        return
    path = header.path
    size = handle.seek(0, os.SEEK_END)
    start = pixel_data_offset(handle, path) if pixel_offset is None else pixel_offset
    head = _read_exact(handle, start, 12)
    if len(head) < 12:
        raise Truncated("the file ends inside the Pixel Data element header", path)
    group, element, _, length = struct.unpack("<HH4sL", head)
    if (group << 16 | element) != _PIXEL_DATA:
        raise Truncated("the file has no Pixel Data element where the header ends", path)
    pos = start + 12
    if length != _UNDEFINED:
        if pos + length > size:
            raise Truncated(f"Pixel Data declares {length} bytes but only {size - pos} remain in the file", path)
        return  # not encapsulated after all: the decoder validates the layout
    items: list[tuple[int, int]] = []
    while True:
        raw = _read_exact(handle, pos, 8)
        if len(raw) < 8:
            raise Truncated(f"encapsulated pixel data ends after {len(items)} item(s) without its sequence "
                            f"delimiter (file cut at byte {size})", path)
        group, element, length = _ITEM_HEADER.unpack(raw)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            break
        if tag != _ITEM:
            raise UndecodableTransferSyntax(f"encapsulated pixel data: expected an item at byte {pos}, found tag "
                                            f"({group:04X},{element:04X})", path)
        pos += 8
        if pos + length > size:
            raise Truncated(f"encapsulated pixel data: item {len(items)} declares {length} bytes but only "
                            f"{size - pos} remain in the file", path)
        items.append((pos, length))
        pos += length
    if len(items) < 2:
        raise Truncated("encapsulated pixel data holds no fragment", path)
    if header.transfer_syntax not in EOI_SYNTAXES:
        return
    table_pos, table_len = items[0]
    offsets = list(struct.unpack(f"<{table_len // 4}L", _read_exact(handle, table_pos, table_len // 4 * 4)))
    fragments = items[1:]
    for frame, index in _frame_ends(fragments, offsets, header.n_frames):
        frag_pos, frag_len = fragments[index]
        tail = _read_exact(handle, frag_pos + max(frag_len - _TAIL, 0), min(frag_len, _TAIL)).rstrip(b"\x00")
        if not (tail.endswith(_EOI) or tail[:-1].endswith(_EOI)):  # one pad byte of any value (0xFF seen)
            raise Truncated(f"compressed frame {frame} ends without its end-of-image marker (FFD9): the "
                            "stream was cut short", path)
