"""Static analysis of training loops. The public entry points used by the engine live here."""

from __future__ import annotations

from tbptt_lint.analysis.api import (
    ModuleSummary,
    ProjectIndex,
    SourceSyntaxError,
    check_source,
    summarize_source,
)

__all__ = [
    "ModuleSummary",
    "ProjectIndex",
    "SourceSyntaxError",
    "check_source",
    "summarize_source",
]
