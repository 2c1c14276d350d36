"""Which failures the Prefect tasks retry: named infrastructure errors and storage blinks, never bad input."""

from __future__ import annotations

import pytest

from tasks.retry import retry_on
from tasks.select import retry_selection
from tasks.train import retry_storage, retry_training
from tasks.utility import retry_utility


class _State:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def result(self):
        if self.error is not None:
            raise self.error
        return 1


def _named(name: str) -> BaseException:
    return type(name, (RuntimeError,), {})("boom")


@pytest.mark.parametrize(("condition", "error", "expected"), [
    (retry_training, _named("TrainingFailedError"), True),
    (retry_training, ConnectionError("reset"), True),
    (retry_training, ValueError("bad setting"), False),
    (retry_training, FileNotFoundError("no weights"), False),
    (retry_storage, TimeoutError("slow"), True),
    (retry_storage, _named("TrainingFailedError"), False),
    (retry_selection, _named("RayTaskError"), True),
    (retry_selection, KeyError("unknown metric"), False),
    (retry_utility, _named("WorkerCrashedError"), True),
    (retry_utility, ValueError("scenario 5 is out of range"), False),
    (retry_on(()), None, False),
])
def test_retry_conditions(condition, error, expected):
    assert condition(None, None, _State(error)) is expected
