"""TBP008 data-instead-of-detach: `.data` is used to cut recurrent state."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DataInsteadOfDetach(Rule):
    """`.data` is used to cut recurrent state."""

    code = "TBP008"
    name = "data-instead-of-detach"
    severity = Severity.INFO

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
