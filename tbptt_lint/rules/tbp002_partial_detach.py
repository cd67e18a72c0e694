"""TBP002 partial-detach: only part of a composite recurrent state is cut."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import PARTIAL, queries
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.fixes import cut_advice, cut_after_backward_fix


class PartialDetach(Rule):
    """Only part of a composite recurrent state is cut.

    An LSTM carries `(h, c)`; stacked cells carry one state per layer. Cutting `h` but not `c`
    (or only some layers) leaves the rest attached to the previous window's graph: the
    gradient still flows back through every earlier window along the uncut part, and without
    `retain_graph=True` the second window raises "Trying to backward through the graph a second
    time". Cut every element.
    """

    code = "TBP002"
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
cell = nn.LSTMCell(8, 16)
for x, y in windows:
    h = h.detach()
    for t in range(x.size(0)):
        h, c = cell(x[t], (h, c))
    loss = (h - y).pow(2).mean()
    loss.backward()
""",
    )
    VALID = (
        """
import torch.nn as nn
cell = nn.LSTMCell(8, 16)
for x, y in windows:
    h, c = h.detach(), c.detach()
    for t in range(x.size(0)):
        h, c = cell(x[t], (h, c))
    loss = (h - y).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for leak in queries(model).leaks:
            if leak.kind != PARTIAL or leak.explained:
                continue
            names = [r.name for r in leak.reads]
            state = ", ".join(f"`{n}`" for n in names)
            group = next((g for g in leak.call.groups if len(g) > 1), leak.call.states)
            lines = sorted({model.line(site.call) for site in leak.backwards})
            into = f"the backward at line {lines[0]}" if lines else "an earlier backward"
            cut = cut_advice(model, leak.call, leak.reads, composite=True)
            message = (
                f"only part of the state {', '.join(group)} is cut: {state} still carries the "
                f"previous window's graph into {into}. Cut every element, e.g. {cut}"
            )
            first = leak.reads[0]
            fix = cut_after_backward_fix(model, leak.call, leak.reads, leak.backwards)
            yield model.finding(self.code, leak.call.state_args[first.name], message, fix)
