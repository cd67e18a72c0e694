"""Strict mode, for developing tbptt-lint: `TBPTT_LINT_STRICT=1` in the environment.

Normally an internal error (a bug in tbptt-lint) met while checking one file is reported as a
one-line error naming the file (exit status 2), and the other files are still checked. In
strict mode it is raised where it happened instead, with its traceback, so that a bug in the
analysis fails a test or a benchmark run rather than costing a file's findings. The test suite
runs in strict mode (tests/conftest.py). Bad input (a file that cannot be read or parsed, a
damaged cache) is reported as in normal mode: it is no bug of ours.

Imports nothing of tbptt-lint's: any module may ask."""

from __future__ import annotations

import os

STRICT_ENV = "TBPTT_LINT_STRICT"


def strict() -> bool:
    """Whether internal errors are raised rather than reported (read at each call, so that a
    test may change it)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")
