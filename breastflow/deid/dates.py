"""Dates and times become offsets: no absolute date leaves the reader.

DICOM dates (DA ``YYYYMMDD``), times (TM ``HHMMSS.FFFFFF``) and date-times
(DT ``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) are parsed into naive :class:`datetime`
objects that live in memory only; what is stored is the number of seconds
relative to a reference acquisition (the pre-contrast series of the study),
per PS3.15 Annex E "Retain Longitudinal Temporal Information with Modified
Dates" in its strongest form: the offset is kept, the anchor is dropped.
"""

from __future__ import annotations

import datetime as dt
import re

_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")
_TM = re.compile(r"^(\d{2}):?(\d{2})?:?(\d{2})?(?:\.(\d{1,6}))?$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:[+-]\d{4})?$")
_PLACEHOLDER_DATE = dt.date(1900, 1, 1)


def parse_da(value: object) -> dt.date | None:
    """Parse a DICOM DA value (also the legacy ``YYYY.MM.DD``); ``None`` if empty/invalid."""
    match = _DA.match(str(value or "").strip())
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def parse_tm(value: object) -> dt.time | None:
    """Parse a DICOM TM value (``HH``, ``HHMM``, ``HHMMSS.FFFFFF``, legacy ``HH:MM:SS``)."""
    match = _TM.match(str(value or "").strip())
    if not match:
        return None
    hour, minute, second, frac = match.groups()
    micro = int(frac.ljust(6, "0")) if frac else 0
    try:
        return dt.time(int(hour), int(minute or 0), min(int(second or 0), 59), micro)
    except ValueError:
        return None


def parse_dt(value: object) -> dt.datetime | None:
    """Parse a DICOM DT value; the UTC offset suffix is ignored (offsets within
    one study are what matter). ``None`` if empty or invalid."""
    match = _DT.match(str(value or "").strip())
    if not match:
        return None
    year, month, day, hour, minute, second, frac = match.groups()
    try:
        return dt.datetime(
            int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
            min(int(second or 0), 59), int(frac.ljust(6, "0")) if frac else 0,
        )
    except ValueError:
        return None


def combine_date_time(date: object, time: object) -> dt.datetime | None:
    """Combine DA and TM values. A missing date uses a fixed placeholder day,
    so offsets between times of one day stay right; a missing time gives ``None``."""
    parsed_time = parse_tm(time)
    if parsed_time is None:
        return None
    return dt.datetime.combine(parse_da(date) or _PLACEHOLDER_DATE, parsed_time)


def seconds_after(moment: dt.datetime | None, reference: dt.datetime | None) -> float | None:
    """Seconds from ``reference`` to ``moment`` (negative if before); ``None`` if either is unknown.

    Rounded to milliseconds so that float noise never becomes a fingerprint.
    """
    if moment is None or reference is None:
        return None
    return round((moment - reference).total_seconds(), 3)
