"""TBP013 warmup-with-grad: Warm-up steps run with gradients on and no cut before the gradient window."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class WarmupWithGrad(Rule):
    """Warm-up steps run with gradients on and no cut before the gradient window."""

    code = "TBP013"
    name = "warmup-with-grad"
    severity = Severity.WARNING
    runtime_visible = True

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from model.findings_for(self.code)
