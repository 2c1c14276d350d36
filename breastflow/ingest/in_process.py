"""Run ingest tasks on threads of this process: the small-run executor (no cluster start).

:class:`InProcessClient` offers the part of ``distributed.Client`` that
:mod:`breastflow.ingest.pipeline` uses (``map`` with ``retries``, ``gather``),
so the pipeline drives the same task functions and collects their outcomes the
same way whether they run here or on a Dask cluster. Tasks run on a small
thread pool: each task is one series (decode, compress and hash release the GIL
for most of their time), and a task that raises is retried like a Dask task
with ``retries`` before its exception reaches the caller, which turns it into
a ``FAILED`` outcome for that series only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any


def call_with_retries(func: Callable[..., Any], retries: int, *args: Any) -> Any:
    """``func(*args)``, run again up to ``retries`` times while it raises (as Dask ``retries`` does).

    Raises:
        Exception: the last attempt's exception once ``retries`` are used up.
    """
    for attempt in range(retries + 1):
        try:
            return func(*args)
        except Exception:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


class InProcessClient:
    """Ingest tasks on a thread pool of this process, behind a ``distributed.Client``-like interface.

    Args:
        threads: tasks run at once (1: one after the other).

    Raises:
        ValueError: ``threads`` < 1.
    """

    def __init__(self, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="breastflow-ingest")

    def map(self, func: Callable[..., Any], *iterables: Iterable[Any], retries: int = 0,
            key: list[str] | None = None, pure: bool = False) -> list[Future]:
        """Submit ``func`` over zipped ``iterables`` (``key`` and ``pure`` are accepted and unused, as on Dask).

        Returns:
            One ``concurrent.futures.Future`` per call, in input order.
        """
        del key, pure  # names matter to a scheduler only
        return [self._pool.submit(call_with_retries, func, retries, *args) for args in zip(*iterables, strict=True)]

    @staticmethod
    def gather(futures: list[Future]) -> list[Any]:
        """The results, in order (raises the first task exception)."""
        return [future.result() for future in futures]

    def close(self) -> None:
        """Wait for running tasks and stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
