"""TBP001 state-not-detached: recurrent state carried across iterations reaches a backward
without a cut."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import FULL, Leak, queries
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.fixes import cut_advice, cut_after_backward_fix
from tbptt_lint.rules.unseen_helpers import unseen_helpers, unseen_helpers_note


class StateNotDetached(Rule):
    """Recurrent state carried across iterations reaches a backward without a cut.

    The state returned by a recurrent call still references the graph of the window that made
    it. When the next window feeds it back in without `.detach()`, its backward runs into the
    previous window's graph, which the previous backward already freed: PyTorch raises
    "Trying to backward through the graph a second time". With `retain_graph=True` the error
    goes away, but every backward then runs through all earlier windows.
    """

    code = "TBP001"
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
rnn = nn.LSTM(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward()
""",
    )
    VALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = rnn(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for leak in queries(model).leaks:
            if leak.kind != FULL or leak.explained:
                continue
            for read in leak.reads:
                produced = model.line(leak.call.call)
                lines = sorted({model.line(site.call) for site in leak.backwards})
                into = f"the backward at line {lines[0]}" if lines else "an earlier backward"
                cut = cut_advice(model, leak.call, leak.reads, read.name)
                message = _between_calls_message(leak, read.name, produced, cut) or (
                    f"`{read.name}` is carried from line {produced} into {into} without a "
                    'cut; the second window will raise "Trying to backward through the graph '
                    'a second time". Cut it once per window, after the backward (or at the top '
                    f"of the loop): {cut}"
                ) + unseen_helpers_note(unseen_helpers(model, leak.call, read.name))
                state_fix = cut_after_backward_fix(model, leak.call, leak.reads, leak.backwards)
                yield model.finding(self.code, leak.call.state_args[read.name], message, state_fix)


def _between_calls_message(leak: Leak, name: str, produced: int, cut: str) -> str | None:
    """The message for a state a method keeps on its object from one call to the next."""
    unit = leak.unit
    if name not in unit.carried_between_calls or any(
        loop in unit.loops_with_backward for loop in leak.call.loops
    ):
        return None
    method = getattr(getattr(unit.unit, "name", None), "value", "the method")
    return (
        f"`{name}` is kept on the object from one call of `{method}` to the next (set at line "
        f"{produced}) without a cut, so each call's backward runs into the graph of the call "
        'before and raises "Trying to backward through the graph a second time". Cut it at the '
        f"start of each call, under `if {name} is not None:`, with {cut}"
    )
