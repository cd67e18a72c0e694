"""Give memory that the parser freed back to the operating system.

libcst's native parser needs about 350 bytes per byte of source: a 450 kB file takes 160 MB.
glibc keeps such freed memory in the process, so a worker stayed at its largest file's peak
until the run ended, and two workers peaked together (benchmarks/lint_memory.py).
`malloc_trim(0)` returns it. Elsewhere (macOS, musl) there is nothing to call, and nothing
happens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

# Files below this size cannot hold enough parser memory to be worth a trim (a few ms).
TRIM_AFTER_BYTES = 100_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes  # only a run that analyses a large file needs it
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    except (OSError, AttributeError):
        return None


def release_after(size: int) -> None:
    """Return freed heap memory to the system after a file of `size` bytes was analysed."""
    if size < TRIM_AFTER_BYTES:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
