"""TBP009 window-misaligned: Window slices and the loop stride disagree, so windows overlap or leave gaps."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class WindowMisaligned(Rule):
    """Window slices and the loop stride disagree, so windows overlap or leave gaps."""

    code = "TBP009"
    name = "window-misaligned"
    severity = Severity.WARNING

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
