"""Suppression comments: `# noqa`, `# noqa: TBP001,TBP003` and the file-level
`# tbptt-lint: noqa`.

Comments are found with `tokenize`, so `"# noqa"` inside a string does not count. When the file
does not tokenize, a plain line scan is used instead (such files usually fail to parse, and
syntax errors cannot be suppressed anyway).
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from tbptt_lint.catalog import BY_CODE as CATALOG_BY_CODE
from tbptt_lint.catalog import SYNTAX_ERROR_CODE

_CODES = r"(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*)"
LINE_NOQA = re.compile(rf"#\s*noqa\b(?::\s*{_CODES}?)?", re.IGNORECASE)
FILE_NOQA = re.compile(rf"#\s*tbptt-lint\s*:\s*noqa\b(?::\s*{_CODES}?)?", re.IGNORECASE)
# The parser's verdict is not the user's to silence, as in ruff.
UNSUPPRESSIBLE_CODES = frozenset({SYNTAX_ERROR_CODE})


class Located(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def line(self) -> int: ...


LocatedT = TypeVar("LocatedT", bound=Located)


@dataclass(frozen=True)
class Directive:
    line: int
    # None: every code (a blanket noqa).
    codes: frozenset[str] | None
    # Codes named in the directive that are not rule codes; they suppress nothing.
    unknown: tuple[str, ...] = ()

    def covers(self, code: str) -> bool:
        return self.codes is None or code in self.codes


@dataclass
class Directives:
    by_line: dict[int, Directive] = field(default_factory=dict)
    file_level: list[Directive] = field(default_factory=list)


@dataclass(frozen=True)
class Comment:
    line: int
    text: str
    # Nothing but whitespace before the comment on its line.
    own_line: bool


def _comments(source: str) -> Iterator[Comment]:
    lines = source.splitlines()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        yield from _scan_comments(lines)
        return
    for token in tokens:
        if token.type == tokenize.COMMENT:
            row, column = token.start
            before = lines[row - 1][:column] if row - 1 < len(lines) else ""
            yield Comment(row, token.string, not before.strip())


def _scan_comments(lines: list[str]) -> Iterator[Comment]:
    for number, line in enumerate(lines, start=1):
        position = line.find("#")
        if position != -1:
            yield Comment(number, line[position:], not line[:position].strip())


def _directive(line: int, match: re.Match[str]) -> Directive:
    raw = match.group("codes")
    if raw is None:
        return Directive(line, None)
    named = [code.upper() for code in re.split(r"[\s,]+", raw.strip()) if code]
    known = frozenset(code for code in named if code in CATALOG_BY_CODE)
    unknown = tuple(code for code in named if code not in CATALOG_BY_CODE)
    return Directive(line, known, unknown)


def parse_directives(source: str) -> Directives:
    directives = Directives()
    for comment in _comments(source):
        file_match = FILE_NOQA.search(comment.text)
        if file_match is not None:
            if comment.own_line:
                directives.file_level.append(_directive(comment.line, file_match))
            continue
        line_match = LINE_NOQA.search(comment.text)
        if line_match is not None:
            directives.by_line[comment.line] = _directive(comment.line, line_match)
    return directives


def apply_noqa(
    items: Iterable[LocatedT], source: str, path: str
) -> tuple[list[LocatedT], list[str]]:
    """Drop the findings a directive suppresses. Returns the kept findings and warnings about
    unknown codes in the directives that were consulted (those on lines with a finding), so
    that other tools' codes such as `# noqa: E501` elsewhere in a file stay quiet."""
    items = list(items)
    if not items or "noqa" not in source.lower():
        return items, []
    directives = parse_directives(source)
    kept: list[LocatedT] = []
    warned: set[tuple[int, str]] = set()
    for item in items:
        consulted = [*directives.file_level]
        line_directive = directives.by_line.get(item.line)
        if line_directive is not None:
            consulted.append(line_directive)
        for directive in consulted:
            warned.update((directive.line, code) for code in directive.unknown)
        suppressed = item.code not in UNSUPPRESSIBLE_CODES and any(
            directive.covers(item.code) for directive in consulted
        )
        if not suppressed:
            kept.append(item)
    warnings = [
        f"{path}:{line}: warning: unknown rule code {code} in noqa directive"
        for line, code in sorted(warned)
    ]
    return kept, warnings
