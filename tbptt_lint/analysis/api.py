"""Contract between the engine and the analysis (stub; the analysis fills it in)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tbptt_lint.diagnostics import Finding
from tbptt_lint.settings import Settings


class SourceSyntaxError(Exception):
    """The source could not be parsed. Positions are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass
class ModuleSummary:
    """Facts about one module's functions that other modules' analysis needs (picklable)."""

    module_name: str
    # function qualified name -> indices of parameters whose every returned value is a cut
    cutting_functions: dict[str, tuple[int, ...]] = field(default_factory=dict)


@dataclass
class ProjectIndex:
    summaries: dict[str, ModuleSummary] = field(default_factory=dict)

    @classmethod
    def from_summaries(cls, summaries: list[ModuleSummary]) -> ProjectIndex:
        return cls({summary.module_name: summary for summary in summaries})


def summarize_source(source: str, module_name: str) -> ModuleSummary:
    """Phase 1: summarise every function of a module. Raises SourceSyntaxError."""
    return ModuleSummary(module_name)


def check_source(
    source: str, path: str, settings: Settings, index: ProjectIndex | None = None
) -> list[Finding]:
    """Phase 2: the findings of every rule for one module's source text, before noqa and
    selection are applied. Raises SourceSyntaxError when the source does not parse."""
    return []
