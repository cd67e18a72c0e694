"""One line per finding, `path:line:col: CODE message`, then the summary line."""

from __future__ import annotations

from collections.abc import Sequence

from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.output.context import ReportContext
from tbptt_lint.output.text import headline, summary_lines


def render(diagnostics: Sequence[Diagnostic], context: ReportContext) -> str:
    out = [headline(diagnostic, context) for diagnostic in diagnostics]
    if not context.quiet:
        out.extend(summary_lines(diagnostics, context))
    return "".join(line + "\n" for line in out)
