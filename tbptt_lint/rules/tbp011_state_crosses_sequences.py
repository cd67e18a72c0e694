"""TBP011 state-crosses-sequences: Recurrent state is carried between unrelated sequences."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class StateCrossesSequences(Rule):
    """Recurrent state is carried between unrelated sequences."""

    code = "TBP011"
    name = "state-crosses-sequences"
    severity = Severity.WARNING

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
