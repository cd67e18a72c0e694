"""Output formats. Each module renders a list of diagnostics into one string."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.output import concise, github, json_format, junit, sarif, text
from tbptt_lint.output.context import ReportContext

Renderer = Callable[[Sequence[Diagnostic], ReportContext], str]

FORMATS: dict[str, Renderer] = {
    "text": text.render,
    "concise": concise.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "github": github.render,
    "junit": junit.render,
}
DEFAULT_FORMAT = "text"


def render(format_name: str, diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    return FORMATS[format_name](diagnostics, context)


__all__ = ["DEFAULT_FORMAT", "FORMATS", "ReportContext", "render"]
