"""From tbptt-lint's values to LSP's: positions, diagnostics, edits.

tbptt-lint counts lines from 1 and columns in code points from 1 (ends exclusive); LSP counts
both from 0 and, by default, columns in UTF-16 code units.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types

from tbptt_lint.diagnostics import Diagnostic, Edit, Severity
from tbptt_lint.engine import LINE_REFERENCE

SOURCE = "tbptt-lint"
SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}
# Words before "line N" that name what sits there ("the backward at line 12").
REFERENCE_LABEL = re.compile(r"(?:[^\s.;:,()]+\s+){0,4}$")
# The line breaks LSP counts (str.splitlines also breaks at form feeds and others).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class Lines:
    """A document's lines, to turn code-point columns into the client's units."""

    def __init__(self, text: str, encoding: str = "utf-16") -> None:
        self.lines = LINE_BREAK.split(text)
        # "utf-16" (LSP's default), "utf-32" (code points) or "utf-8", as negotiated.
        self.encoding = encoding if encoding in ("utf-8", "utf-32") else "utf-16"
        # Where the text ends: past its last line break, or at the end of its last line.
        last = LINE_BREAK.split(text)[-1]
        self.end = types.Position(len(LINE_BREAK.findall(text)), self._units(last))

    def _units(self, text: str) -> int:
        if self.encoding == "utf-32":
            return len(text)
        if self.encoding == "utf-8":
            return len(text.encode("utf-8", errors="surrogatepass"))
        return len(text.encode("utf-16-le", errors="surrogatepass")) // 2

    def position(self, line: int, column: int) -> types.Position:
        """The LSP position of a 1-based (line, column)."""
        if line > len(self.lines):
            return self.end
        text = self.lines[max(line, 1) - 1]
        prefix = text[: max(column, 1) - 1]
        return types.Position(max(line, 1) - 1, self._units(prefix))

    def range(self, start: tuple[int, int], end: tuple[int, int]) -> types.Range:
        return types.Range(self.position(*start), self.position(*end))

    def code_points(self, position: types.Position) -> tuple[int, int]:
        """The 1-based (line, column) of an LSP position."""
        if position.line >= len(self.lines):
            return position.line + 1, 1
        text = self.lines[position.line]
        units = 0
        for index, char in enumerate(text):
            if units >= position.character:
                return position.line + 1, index + 1
            units += self._units(char)
        return position.line + 1, len(text) + 1


def diagnostic_range(diagnostic: Diagnostic, lines: Lines) -> types.Range:
    end = (diagnostic.end_line, diagnostic.end_column)
    if end < (diagnostic.line, diagnostic.column):
        end = (diagnostic.line, diagnostic.column)
    return lines.range((diagnostic.line, diagnostic.column), end)


def to_lsp_diagnostic(
    diagnostic: Diagnostic, lines: Lines, uri: str, related: bool = True
) -> types.Diagnostic:
    information = related_information(diagnostic, lines, uri) if related else None
    return types.Diagnostic(
        range=diagnostic_range(diagnostic, lines),
        message=diagnostic.message,
        severity=SEVERITIES.get(diagnostic.severity, types.DiagnosticSeverity.Error),
        code=diagnostic.code,
        code_description=(
            types.CodeDescription(href=diagnostic.url) if diagnostic.url is not None else None
        ),
        source=SOURCE,
        related_information=information or None,
        # Read back by the code actions: which finding this is, and whether it has a fix.
        data={"code": diagnostic.code, "line": diagnostic.line, "column": diagnostic.column},
    )


def related_information(
    diagnostic: Diagnostic, lines: Lines, uri: str
) -> list[types.DiagnosticRelatedInformation]:
    """The lines the message names ("carried from line 5 into the backward at line 12"):
    where the state came from, the backward it reaches, the loop it crosses."""
    found: list[types.DiagnosticRelatedInformation] = []
    seen: set[int] = set()
    for match in LINE_REFERENCE.finditer(diagnostic.message):
        number = int(match.group(1))
        if number in seen or number == diagnostic.line or not 1 <= number <= len(lines.lines):
            continue
        seen.add(number)
        before = diagnostic.message[: match.start()]
        label = (REFERENCE_LABEL.search(before).group(0) + match.group(0)).strip()  # type: ignore[union-attr]
        text = lines.lines[number - 1]
        indent = len(text) - len(text.lstrip())
        location = types.Location(
            uri, lines.range((number, indent + 1), (number, len(text.rstrip()) + 1))
        )
        found.append(types.DiagnosticRelatedInformation(location, label))
    return found


def text_edit(edit: Edit, lines: Lines) -> types.TextEdit:
    return types.TextEdit(lines.range(edit.location, edit.end_location), edit.content)


def whole_document_edit(new_text: str, lines: Lines) -> types.TextEdit:
    return types.TextEdit(types.Range(types.Position(0, 0), lines.end), new_text)


def workspace_edit(uri: str, edits: Sequence[types.TextEdit]) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(changes={uri: list(edits)})
