"""TBP005 retain-graph-bandaid: `retain_graph=True` keeps an uncut carried state's graph
alive."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import RETAINED, Leak, queries
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class RetainGraphBandaid(Rule):
    """`retain_graph=True` keeps an uncut carried state's graph alive.

    `retain_graph=True` silences "Trying to backward through the graph a second time", but the
    carried state still links every window to all earlier ones. Each backward runs through the
    whole history again: earlier windows get their gradient counted again, and time and memory
    grow with every window. Cut the state instead and drop `retain_graph=True`. The k1/k2
    leaf-state recipe, where each step's state is detached and made a leaf, is not affected.
    """

    code = "TBP005"
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward(retain_graph=True)
""",
    )
    VALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward(retain_graph=True)
    hidden = hidden.detach()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        reported: set[int] = set()
        for leak in queries(model).leaks:
            if leak.kind != RETAINED:
                continue
            names = ", ".join(f"`{r.name}`" for r in leak.reads)
            produced = model.line(leak.call.call)
            for site in leak.backwards:
                if id(site.call) in reported:
                    continue
                reported.add(id(site.call))
                message = (
                    f"`retain_graph=True` hides an uncut carried state: {names} (line "
                    f"{produced}) links every window to all earlier ones, so each backward runs "
                    "through the whole history again and time and memory grow. "
                    f"{_failed_cut(model, leak)}Cut the state at the top of the loop and drop "
                    "`retain_graph=True`"
                )
                yield model.finding(self.code, site.call, message)


def _failed_cut(model: FileModel, leak: Leak) -> str:
    """For a leak whose cut cuts nothing (reported by TBP003 or TBP014), where that cut is."""
    if not leak.explained:
        return ""
    states = {read.name for read in leak.reads}
    unit = leak.unit
    nodes = [d.node for d in unit.discarded_detaches if d.state in states]
    nodes += [v.node for v in unit.inplace_view_detaches if v.state in states]
    nodes += [a.node for a in unit.alias_cuts if a.state in states]
    if not nodes:
        return ""
    line = min(model.line(node) for node in nodes)
    return f"The cut at line {line} leaves the state attached (it cuts nothing). "
