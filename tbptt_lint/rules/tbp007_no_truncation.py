"""TBP007 no-truncation: The backward runs only after the whole sequence: full BPTT."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class NoTruncation(Rule):
    """The backward runs only after the whole sequence: full BPTT."""

    code = "TBP007"
    name = "no-truncation"
    severity = Severity.INFO
    runtime_visible = True
    default_enabled = False

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
