"""TBP008 data-instead-of-detach: `.data` is used to cut recurrent state."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DataInsteadOfDetach(Rule):
    """`.data` is used to cut recurrent state.

    `h.data` (or the old `Variable(h.data)`) does cut the graph, but it also bypasses
    autograd's version tracking: an in-place change to the result is not detected and can make
    gradients silently wrong. `h.detach()` cuts the same way and keeps the checks.
    """

    code = "TBP008"
    name = "data-instead-of-detach"
    severity = Severity.INFO

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = hidden.data
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
""",
    )
    VALID = INVALID[:0] + (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            states = {state for call in unit.recurrent_calls for state in call.states}
            for cut in unit.data_cuts:
                if cut.name not in states:
                    continue
                message = (
                    f"`{cut.name}` is cut with `.data`, which bypasses autograd's checks for "
                    "in-place changes; use `.detach()`, which cuts the graph the same way"
                )
                yield model.finding(self.code, cut.node, message)
