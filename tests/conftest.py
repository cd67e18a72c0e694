"""Settings for the whole test suite.

Strict mode (tbptt_lint/strict.py) is on: an internal error in the analysis raises where it
happened, with its traceback, so a bug fails the test that met it instead of becoming a
one-line report (or a file with no findings) that a test may not look at. Set here, at import,
before any test starts a worker pool (the fork server keeps the environment it starts with).
`TBPTT_LINT_STRICT=0 python -m pytest` runs the suite as a user's run would. Tests of the
user-facing report of an internal error ask for the `not_strict` fixture."""

from __future__ import annotations

import os

import pytest

from tbptt_lint.strict import STRICT_ENV

os.environ.setdefault(STRICT_ENV, "1")


@pytest.fixture
def not_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Normal mode, as users run it: an internal error is reported, one line per file."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
