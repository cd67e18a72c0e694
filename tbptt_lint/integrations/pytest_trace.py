"""The `Trace` the `tbptt` fixture hands out. Imports torch: `pytest_fixture` imports
this module only when a test calls `tbptt.trace(...)`."""

from __future__ import annotations

import itertools
from typing import Any, Literal

from tbptt_lint.tracer import Trace

# Entry order across all fixture traces: nested traces must be closed innermost first, or an
# outer trace's uninstall would put back a wrapper the inner one installed.
_entries = itertools.count()


class FixtureTrace(Trace):
    """A `Trace` that remembers whether it is still entered, so that the fixture can close a
    trace the test left open (its patches would otherwise leak into every later test)."""

    entered_at: int | None = None  # order of entry while entered; None when not entered

    def __enter__(self) -> Trace:
        trace = super().__enter__()
        self.entered_at = next(_entries)
        return trace

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        self.entered_at = None
        return super().__exit__(exc_type, exc, tb)


def close_open(traces: list[Any]) -> int:
    """Exit every trace of `traces` still entered, innermost first; how many there were."""
    still_open = [t for t in traces if getattr(t, "entered_at", None) is not None]
    for trace in sorted(still_open, key=lambda t: t.entered_at, reverse=True):
        trace.__exit__(None, None, None)
    return len(still_open)
