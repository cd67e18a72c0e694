"""TBP003 detach-result-discarded: The result of an out-of-place `detach()` is thrown away."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DetachResultDiscarded(Rule):
    """The result of an out-of-place `detach()` is thrown away."""

    code = "TBP003"
    name = "detach-result-discarded"
    severity = Severity.ERROR
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
