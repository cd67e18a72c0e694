"""TBP010 batch-dim-sliced: Time windows are sliced along the batch axis."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class BatchDimSliced(Rule):
    """Time windows are sliced along the batch axis."""

    code = "TBP010"
    name = "batch-dim-sliced"
    severity = Severity.ERROR
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
