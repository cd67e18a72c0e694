"""TBP014 detach-inplace-on-view: `detach_()` is called on a view, which raises at runtime."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DetachInplaceOnView(Rule):
    """`detach_()` is called on a view, which raises at runtime."""

    code = "TBP014"
    name = "detach-inplace-on-view"
    severity = Severity.ERROR

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
