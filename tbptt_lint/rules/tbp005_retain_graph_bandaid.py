"""TBP005 retain-graph-bandaid: `retain_graph=True` keeps an uncut carried state's graph alive."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class RetainGraphBandaid(Rule):
    """`retain_graph=True` keeps an uncut carried state's graph alive."""

    code = "TBP005"
    name = "retain-graph-bandaid"
    severity = Severity.ERROR
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
