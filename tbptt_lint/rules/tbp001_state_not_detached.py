"""TBP001 state-not-detached: Recurrent state carried across iterations reaches a backward without a cut."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class StateNotDetached(Rule):
    """Recurrent state carried across iterations reaches a backward without a cut."""

    code = "TBP001"
    name = "state-not-detached"
    severity = Severity.ERROR
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
