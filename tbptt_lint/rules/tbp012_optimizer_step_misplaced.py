"""TBP012 optimizer-step-misplaced: `zero_grad()` and `step()` sit at different loop levels, so gradients are lost or never cleared."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class OptimizerStepMisplaced(Rule):
    """`zero_grad()` and `step()` sit at different loop levels, so gradients are lost or never cleared."""

    code = "TBP012"
    name = "optimizer-step-misplaced"
    severity = Severity.ERROR

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
