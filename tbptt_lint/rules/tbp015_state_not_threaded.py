"""TBP015 state-not-threaded: Carried state is reset inside the loop or never passed back to the recurrent call."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class StateNotThreaded(Rule):
    """Carried state is reset inside the loop or never passed back to the recurrent call."""

    code = "TBP015"
    name = "state-not-threaded"
    severity = Severity.WARNING
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
