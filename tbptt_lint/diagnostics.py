"""The values that flow from the analysis to the output formats."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TypeGuard

RULE_URL_BASE = "https://github.com/tbptt-lint/tbptt-lint/blob/main/rules/"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Edit:
    """Replace the text between two 1-based (line, column) positions with `content`."""

    content: str
    location: tuple[int, int]
    end_location: tuple[int, int]


SAFE = "safe"
UNSAFE = "unsafe"


@dataclass(frozen=True)
class Fix:
    message: str
    applicability: str  # SAFE or UNSAFE, as in ruff
    edits: tuple[Edit, ...] = ()


def applicable(fix: Fix | None, unsafe: bool) -> TypeGuard[Fix]:
    """Whether a run applies `fix`: safe fixes always, unsafe ones with `--unsafe-fixes`."""
    return fix is not None and (fix.applicability == SAFE or unsafe)


@dataclass(frozen=True)
class Finding:
    """What a rule reports inside one file; positions are 1-based lines and 1-based columns."""

    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix: Fix | None = None
    # Notebook cell the finding sits in (1-based), when the file is a notebook.
    cell: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    """A finding placed in a file, ready for any output format."""

    code: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    severity: Severity
    url: str | None = None
    fix: Fix | None = None
    cell: int | None = None
    # The source lines the finding spans (at most engine.MAX_SOURCE_LINES), for the text
    # output's excerpt; not part of a diagnostic's identity.
    source_lines: tuple[str, ...] = field(default=(), compare=False, hash=False)

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.code)


def rule_url(code: str) -> str:
    return f"{RULE_URL_BASE}{code}.md"
