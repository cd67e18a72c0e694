"""TBP004 detach-every-step: The state is cut at every time step while the backward runs after the time loop."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DetachEveryStep(Rule):
    """The state is cut at every time step while the backward runs after the time loop."""

    code = "TBP004"
    name = "detach-every-step"
    severity = Severity.WARNING
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
