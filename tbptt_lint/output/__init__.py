"""Output formats. Each module renders a list of diagnostics into one string."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.output.context import ReportContext

Renderer = Callable[[Sequence[Diagnostic], ReportContext], str]

# Each format is imported when it renders: a run prints one, and some (junit's XML, sarif) take
# longer to import than a warm run takes to lint.


def _text(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import text

    return text.render(diagnostics, context)


def _concise(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import concise

    return concise.render(diagnostics, context)


def _json(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import json_format

    return json_format.render(diagnostics, context)


def _sarif(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import sarif

    return sarif.render(diagnostics, context)


def _github(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import github

    return github.render(diagnostics, context)


def _junit(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    from tbptt_lint.output import junit

    return junit.render(diagnostics, context)


FORMATS: dict[str, Renderer] = {
    "text": _text,
    "concise": _concise,
    "json": _json,
    "sarif": _sarif,
    "github": _github,
    "junit": _junit,
}
DEFAULT_FORMAT = "text"


def render(format_name: str, diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    return FORMATS[format_name](diagnostics, context)


__all__ = ["DEFAULT_FORMAT", "FORMATS", "ReportContext", "render"]
