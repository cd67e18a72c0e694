"""Static analysis of training loops. The public entry points used by the engine live here.

The analysis proper (libcst and the interpreter) is imported on the first call, so that the
command line starts fast when every result comes from the cache."""

from __future__ import annotations

from typing import Any

from tbptt_lint.analysis.index import ModuleSummary, ProjectIndex, SourceSyntaxError


def check_source(*args: Any, **kwargs: Any) -> Any:
    """See `tbptt_lint.analysis.api.check_source`."""
    from tbptt_lint.analysis import api

    return api.check_source(*args, **kwargs)


def summarize_source(*args: Any, **kwargs: Any) -> Any:
    """See `tbptt_lint.analysis.api.summarize_source`."""
    from tbptt_lint.analysis import api

    return api.summarize_source(*args, **kwargs)


__all__ = [
    "ModuleSummary",
    "ProjectIndex",
    "SourceSyntaxError",
    "check_source",
    "summarize_source",
]
