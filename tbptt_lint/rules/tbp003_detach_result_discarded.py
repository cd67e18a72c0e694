"""TBP003 detach-result-discarded: the result of an out-of-place `detach()` is thrown away."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import queries
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DetachResultDiscarded(Rule):
    """The result of an out-of-place `detach()` is thrown away.

    `tensor.detach()` returns a new tensor and leaves the original attached to its graph, so
    `hidden.detach()` as a statement (or `for s in state: s.detach()`) cuts nothing: the state
    still leaks into the next window. Assign the result, or use the in-place `detach_()`.
    Objects whose own `detach()` works in place (custom state classes) are not reported.
    """

    code = "TBP003"
    name = "detach-result-discarded"
    severity = Severity.ERROR
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
    hidden.detach()
""",
    )
    VALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
    hidden.detach_()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            for discarded in unit.discarded_detaches:
                if not discarded.certain:
                    continue
                name = discarded.target
                leaked = discarded.state or name
                message = (
                    f"`{name}.detach()` returns a new tensor and the result is thrown away, so "
                    f"`{leaked}` stays attached to the graph and leaks into the next window. "
                    f"Write `{name} = {name}.detach()` (or `{name}.detach_()`)"
                )
                yield model.finding(self.code, discarded.node, message)
            leaked = queries(model).leaked_states(unit)
            for cut in unit.alias_cuts:
                if cut.state not in leaked:
                    continue
                message = (
                    f"`{cut.alias}` is a local copy taken from `{cut.state}`; cutting the copy "
                    f"leaves `{cut.state}` attached to the graph, and the loop passes "
                    f"`{cut.state}` on uncut. Cut `{cut.state}` itself, or write the cut copies "
                    f"back into it"
                )
                yield model.finding(self.code, cut.node, message)
