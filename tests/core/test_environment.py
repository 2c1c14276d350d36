"""scoped_env: variables set or unset inside a block, every previous value (or absence) restored, also on error."""

from __future__ import annotations

import os

import pytest

from breastflow.environment import scoped_env


def test_set_unset_and_restore_also_on_error(monkeypatch):
    monkeypatch.setenv("BF_TEST_KEEP", "old")
    monkeypatch.delenv("BF_TEST_NEW", raising=False)
    with pytest.raises(RuntimeError), scoped_env({"BF_TEST_KEEP": None, "BF_TEST_NEW": "1"}):
        assert "BF_TEST_KEEP" not in os.environ and os.environ["BF_TEST_NEW"] == "1"
        raise RuntimeError("inside")
    assert os.environ["BF_TEST_KEEP"] == "old" and "BF_TEST_NEW" not in os.environ
