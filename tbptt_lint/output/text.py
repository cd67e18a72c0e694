"""The default format: `path:line:col: CODE message`, the source with the span underlined, and
a summary line."""

from __future__ import annotations

from collections.abc import Sequence

from tbptt_lint.diagnostics import Diagnostic, Severity
from tbptt_lint.output.context import ReportContext

TAB_WIDTH = 4
BOLD = "1"
RED = "31"
YELLOW = "33"
CYAN = "36"
BLUE = "34"
SEVERITY_COLOR = {Severity.ERROR: RED, Severity.WARNING: YELLOW, Severity.INFO: CYAN}


def paint(text: str, code: str, enabled: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if enabled and text else text


def headline(diagnostic: Diagnostic, context: ReportContext) -> str:
    color = context.color
    where = paint(context.display_path(diagnostic.path), BOLD, color)
    cell = f"cell {diagnostic.cell}:" if diagnostic.cell is not None else ""
    code = paint(diagnostic.code, f"{BOLD};{SEVERITY_COLOR[diagnostic.severity]}", color)
    fixable = f" {paint('[*]', CYAN, color)}" if context.applicable(diagnostic) else ""
    return (
        f"{where}:{cell}{diagnostic.line}:{diagnostic.column}: {code}{fixable} {diagnostic.message}"
    )


def _errors(count: int) -> str:
    return f"{count} error{'s' if count != 1 else ''}"


def summary_lines(diagnostics: Sequence[Diagnostic], context: ReportContext) -> list[str]:
    """ruff's closing lines: the count (with what was fixed), then what a fix could do."""
    count = len(diagnostics)
    fixed = context.fixed or 0
    if count == 0 and not fixed:
        return ["All checks passed!"]
    if context.fixed is None:
        lines = [f"Found {_errors(count)}."]
    else:
        lines = [f"Found {_errors(count + fixed)} ({fixed} fixed, {count} remaining)."]
    fixable = sum(1 for d in diagnostics if context.applicable(d))
    hidden = sum(1 for d in diagnostics if d.fix is not None and not context.applicable(d))
    hint = (
        f" ({hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with the "
        "`--unsafe-fixes` option)"
        if hidden
        else ""
    )
    if fixable:
        lines.append(f"[*] {fixable} fixable with the `--fix` option{hint}.")
    elif hidden:
        lines.append(f"No fixes available{hint}.")
    return lines


def _underline(diagnostic: Diagnostic, index: int, line: str, last_index: int) -> tuple[int, int]:
    """Start and end (character offsets in `line`) of the span's part on this line."""
    stripped_start = len(line) - len(line.lstrip())
    start = diagnostic.column - 1 if index == 0 else stripped_start
    end = diagnostic.end_column - 1 if index == last_index else len(line.rstrip())
    start = min(max(start, 0), len(line))
    return start, max(end, start + 1)


def snippet(diagnostic: Diagnostic, context: ReportContext) -> list[str]:
    """Source lines with a line-number gutter and carets under the span."""
    lines = diagnostic.source_lines
    if not lines:
        return []
    color = context.color
    last_number = diagnostic.line + len(lines) - 1
    width = len(str(last_number))
    blank_gutter = paint(" " * width + " |", BLUE, color)
    caret_color = SEVERITY_COLOR[diagnostic.severity]
    spans_to_end = diagnostic.end_line == last_number
    out = [blank_gutter]
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        number = paint(f"{diagnostic.line + index:>{width}} |", BLUE, color)
        out.append(f"{number} {line.expandtabs(TAB_WIDTH)}".rstrip())
        last_index = len(lines) - 1 if spans_to_end else len(lines)
        start, end = _underline(diagnostic, index, line, last_index)
        # Measure with tabs expanded so the carets sit under the characters they mark.
        offset = len(line[:start].expandtabs(TAB_WIDTH))
        length = len(line[:end].expandtabs(TAB_WIDTH)) - offset
        marks = "^" * max(length, 1)
        label = f" {diagnostic.code}" if index == len(lines) - 1 else ""
        out.append(f"{blank_gutter} {' ' * offset}{paint(marks + label, caret_color, color)}")
    out.append(blank_gutter)
    return out


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    out: list[str] = []
    for diagnostic in diagnostics:
        out.append(headline(diagnostic, context))
        if context.show_source:
            source = snippet(diagnostic, context)
            if source:
                out.extend(source)
                out.append("")
    if not context.quiet:
        if diagnostics and (not out or out[-1] != ""):
            out.append("")
        out.extend(summary_lines(diagnostics, context))
    return "".join(line + "\n" for line in out)
