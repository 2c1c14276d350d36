"""When a Prefect task of breastflow is retried: on named infrastructure failures and storage blinks, never on bad input."""

from __future__ import annotations

from collections.abc import Callable

from breastflow.ingest.series import is_transient


def retry_on(error_names: tuple[str, ...] = ()) -> Callable[..., bool]:
    """A ``retry_condition_fn`` that retries when the task raised one of ``error_names`` (matched by type
    name: Ray is imported lazily) or a transient storage/network error
    (:func:`breastflow.ingest.series.is_transient`)."""

    def condition(task, task_run, state) -> bool:
        try:
            state.result()
        except Exception as err:  # noqa: BLE001 - classify whatever the task raised
            return type(err).__name__ in error_names or is_transient(err)
        return False

    return condition
