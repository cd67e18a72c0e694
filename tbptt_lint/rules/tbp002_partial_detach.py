"""TBP002 partial-detach: Only part of a composite recurrent state is cut."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class PartialDetach(Rule):
    """Only part of a composite recurrent state is cut."""

    code = "TBP002"
    name = "partial-detach"
    severity = Severity.ERROR
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
