"""One worker thread for every analysis, whose running analysis a newer text can cancel.

The analysis has no points where it could stop by itself, so a run that a newer change makes
useless is stopped from outside: `AnalysisCancelled` is raised in the worker thread (CPython's
PyThreadState_SetAsyncExc), at its next bytecode. It derives from BaseException so that no
`except Exception` on the way swallows it. A job is cancelled at most once, only while it
runs, and a cancellation not yet raised is cleared before the job returns, so none can land in
the executor's own loop. Where the interpreter offers no such call, runs are not cancelled,
only superseded.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_SET_ASYNC_EXC = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)


class AnalysisCancelled(BaseException):
    """Raised inside a run that a newer text made useless."""


@dataclass
class _Running:
    key: object
    thread: int
    cancelled: bool = False


class Worker:
    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tbptt-lint")
        self._lock = threading.Lock()
        self._running: _Running | None = None

    async def run(self, key: object, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the worker thread. `key` names what it works for (a document);
        `cancel(key)` stops it. Raises AnalysisCancelled when cancelled."""

        def job() -> T:
            with self._lock:
                self._running = _Running(key, threading.get_ident())
            try:
                return function(*args)
            finally:
                with self._lock:
                    self._running = None
                    _clear_pending(threading.get_ident())

        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

    def cancel(self, key: object) -> bool:
        """Stop the job running for `key`, if one is. Whether a cancellation was sent."""
        if _SET_ASYNC_EXC is None:
            return False
        with self._lock:
            running = self._running
            if running is None or running.key != key or running.cancelled:
                return False
            running.cancelled = True
            _SET_ASYNC_EXC(ctypes.c_ulong(running.thread), ctypes.py_object(AnalysisCancelled))
            return True


def _clear_pending(ident: int) -> None:
    if _SET_ASYNC_EXC is not None:
        _SET_ASYNC_EXC(ctypes.c_ulong(ident), ctypes.py_object())
