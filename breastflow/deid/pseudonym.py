"""Keyed pseudonyms for patient, study and series identifiers (HMAC-SHA256).

``pseudonym = "<prefix>-" + hex(HMAC-SHA256(key, kind + "\\x1f" + value))[:32]``

* deterministic: the same identifier and key always give the same pseudonym,
  so a patient's studies ingested months apart link up;
* one-way without the key: HMAC is a PRF, so nobody without the key can
  reverse a pseudonym or confirm a guessed identifier (an unkeyed hash of an
  MRN could be brute-forced in seconds, which is why there is no fallback);
* domain separated: ``kind`` is part of the message, so a patient ID and a
  study UID that happen to be equal never collide;
* 128 bits kept: collisions are negligible for any cohort size.

The key comes from ``BREASTFLOW_PSEUDONYM_KEY`` by default; the Prefect layer
may read it from a Secret block and pass it in. Rotating the key changes every
pseudonym (a new, unlinkable store).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from enum import Enum

KEY_ENV_VAR = "BREASTFLOW_PSEUDONYM_KEY"
#: Minimum key length in bytes (UTF-8 of the env var): 32 random characters or more.
MIN_KEY_BYTES = 32
PSEUDONYM_HEX_CHARS = 32
_SEPARATOR = "\x1f"


@contextmanager
def pseudonym_key(key: str) -> Iterator[None]:
    """Expose ``key`` as ``BREASTFLOW_PSEUDONYM_KEY`` inside the block; restore the previous value (or absence) after."""
    from breastflow.environment import scoped_env

    with scoped_env({KEY_ENV_VAR: key}):
        yield


class PseudonymKind(str, Enum):
    """Which identifier is pseudonymised (part of the HMAC message and the prefix)."""

    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"

    @property
    def prefix(self) -> str:
        """Short prefix of pseudonyms of this kind."""
        return {"patient": "pat", "study": "stu", "series": "ser"}[self.value]


class PseudonymKeyError(ValueError):
    """The pseudonymisation key is missing or too short."""


def check_key(key: bytes) -> bytes:
    """Validate a key.

    Raises:
        PseudonymKeyError: if ``key`` is not bytes or shorter than :data:`MIN_KEY_BYTES`.
    """
    if not isinstance(key, (bytes, bytearray)):
        raise PseudonymKeyError(f"pseudonym key must be bytes, got {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"pseudonym key is {len(key)} bytes; at least {MIN_KEY_BYTES} are required. Generate one with "
            f"`python -c \"import secrets; print(secrets.token_hex(32))\"` and keep it secret and stable")
    return bytes(key)


def load_key(env: Mapping[str, str] = os.environ) -> bytes:
    """Read the pseudonymisation key from ``BREASTFLOW_PSEUDONYM_KEY``.

    Args:
        env: environment mapping (default: ``os.environ``).

    Returns:
        The key as UTF-8 bytes.

    Raises:
        PseudonymKeyError: if the variable is unset, empty or too short.
    """
    value = env.get(KEY_ENV_VAR, "")
    if not value:
        raise PseudonymKeyError(
            f"{KEY_ENV_VAR} is not set: de-identification needs a secret key (never an unkeyed hash). "
            f"Set it to at least {MIN_KEY_BYTES} random characters, e.g. "
            f"`export {KEY_ENV_VAR}=$(python -c \"import secrets; print(secrets.token_hex(32))\")`, "
            "or pass the key from a Prefect Secret block")
    return check_key(value.encode("utf-8"))


def pseudonymise(value: str, kind: str | PseudonymKind, key: bytes) -> str:
    """Keyed pseudonym of an identifier.

    Args:
        value: the raw identifier (PatientID, StudyInstanceUID, SeriesInstanceUID);
            surrounding whitespace is ignored (DICOM pads values).
        kind: ``"patient"``, ``"study"`` or ``"series"``.
        key: secret key (>= 32 bytes), e.g. from :func:`load_key`.

    Returns:
        e.g. ``"pat-3f9a...`` (prefix, dash, 32 hex characters).

    Raises:
        PseudonymKeyError: bad key.
        ValueError: empty identifier (all empty IDs would share one pseudonym) or unknown kind.
    """
    kind = PseudonymKind(kind)
    check_key(key)
    text = str(value).strip()
    if not text:
        raise ValueError(f"empty {kind.value} identifier cannot be pseudonymised")
    digest = hmac.new(bytes(key), f"{kind.value}{_SEPARATOR}{text}".encode(), hashlib.sha256).hexdigest()
    return f"{kind.prefix}-{digest[:PSEUDONYM_HEX_CHARS]}"
