"""GitHub Actions workflow commands, one annotation per finding."""

from __future__ import annotations

from collections.abc import Sequence

from tbptt_lint.diagnostics import Diagnostic, Severity
from tbptt_lint.output.context import ReportContext

COMMAND_FOR_SEVERITY = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    """Escape a command's message, per the workflow-command spec."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value, which additionally may not hold `:` or `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(diagnostic: Diagnostic, context: ReportContext) -> str:
    path = context.display_path(diagnostic.path)
    properties = {
        "title": f"tbptt-lint ({diagnostic.code})",
        "file": path,
        "line": str(diagnostic.line),
        "col": str(diagnostic.column),
        "endLine": str(diagnostic.end_line),
        "endColumn": str(diagnostic.end_column),
    }
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    message = (
        f"{path}:{diagnostic.line}:{diagnostic.column}: {diagnostic.code} {diagnostic.message}"
    )
    return f"::{COMMAND_FOR_SEVERITY[diagnostic.severity]} {joined}::{escape_data(message)}"


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    return "".join(annotation(diagnostic, context) + "\n" for diagnostic in diagnostics)
