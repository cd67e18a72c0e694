"""TBP006 loss-accumulated-with-graph: A loss is accumulated across iterations together with its graph."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class LossAccumulatedWithGraph(Rule):
    """A loss is accumulated across iterations together with its graph."""

    code = "TBP006"
    name = "loss-accumulated-with-graph"
    severity = Severity.WARNING

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
