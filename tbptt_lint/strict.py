"""Strict mode, for developing tbptt-lint: `TBPTT_LINT_STRICT=1` in the environment.

Normally an internal error (a bug in tbptt-lint) met while checking one file is reported as a
one-line error naming the file (exit status 2), and the other files are still checked. In
strict mode it is raised where it happened instead, with its traceback, so that a bug in the
analysis fails a test or a benchmark run rather than costing a file's findings. The test suite
runs in strict mode (tests/conftest.py). Bad input (a file that cannot be read or parsed, a
damaged cache) is reported as in normal mode: it is no bug of ours.

Imports nothing of tbptt-lint's: any module may ask."""

from __future__ import annotations

import ast
import os

STRICT_ENV = "TBPTT_LINT_STRICT"


def strict() -> bool:
    """Whether internal errors are raised rather than reported (read at each call, so that a
    test may change it)."""
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


class StrictModeError(RuntimeError):
    """Raised in strict mode where the analysis took a path that only a bug of its own leads
    to: a text it cut out of a file that parses (a block, a method) does not parse, so the
    analysis would quietly read less of the file than it means to."""


def parses(source: str) -> bool:
    """Whether Python's parser accepts `source` (what a cut-out text is compared with)."""
    try:
        ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def unparsable_cut(what: str, source: str) -> None:
    """In strict mode, raise when `what`, cut out of `source`, did not parse though `source`
    does. The cut-out text of a file that does not parse may fail too: no bug of ours."""
    if strict() and parses(source):
        raise StrictModeError(f"{what} does not parse, though the whole file does")
