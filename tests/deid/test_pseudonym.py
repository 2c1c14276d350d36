"""Keyed pseudonyms: deterministic with the key, different without it, never unkeyed."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from breastflow.deid.pseudonym import (
    KEY_ENV_VAR,
    PseudonymKeyError,
    load_key,
    pseudonymise,
)

KEY = b"k" * 16 + b"0123456789abcdef"
OTHER = b"x" * 40


def test_deterministic_and_matches_hmac_reference() -> None:
    first = pseudonymise("MRN123456700001", "patient", KEY)
    assert first == pseudonymise(" MRN123456700001 ", "patient", KEY)
    reference = hmac.new(KEY, b"patient\x1fMRN123456700001", hashlib.sha256).hexdigest()[:32]
    assert first == f"pat-{reference}"


def test_other_key_kind_or_value_changes_pseudonym() -> None:
    base = pseudonymise("MRN1", "patient", KEY)
    assert pseudonymise("MRN1", "patient", OTHER) != base
    assert pseudonymise("MRN1", "study", KEY) != base
    assert pseudonymise("MRN2", "patient", KEY) != base
    assert "MRN1" not in base


@pytest.mark.parametrize("env", [{}, {KEY_ENV_VAR: ""}, {KEY_ENV_VAR: "short"}])
def test_missing_or_short_key_is_a_clear_error(env: dict) -> None:
    with pytest.raises(PseudonymKeyError, match=KEY_ENV_VAR if not env.get(KEY_ENV_VAR) else "at least 32"):
        load_key(env)


def test_load_key_from_env_and_bad_inputs() -> None:
    assert load_key({KEY_ENV_VAR: KEY.decode()}) == KEY
    with pytest.raises(PseudonymKeyError):
        pseudonymise("MRN1", "patient", b"")
    with pytest.raises(ValueError, match="empty"):
        pseudonymise("  ", "patient", KEY)
    with pytest.raises(ValueError):
        pseudonymise("MRN1", "doctor", KEY)


@pytest.mark.parametrize("before", [None, "an-earlier-key-0123456789abcdef0123"])
def test_pseudonym_key_exposes_the_key_and_restores_what_was_there(monkeypatch, before):
    from breastflow.deid.pseudonym import pseudonym_key

    if before is None:
        monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV_VAR, before)
    with pytest.raises(RuntimeError), pseudonym_key("block-key-0123456789abcdef0123456789"):
        assert os.environ[KEY_ENV_VAR] == "block-key-0123456789abcdef0123456789"
        raise RuntimeError("restored even on error")
    assert os.environ.get(KEY_ENV_VAR) == before
