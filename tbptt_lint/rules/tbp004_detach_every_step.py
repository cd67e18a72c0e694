"""TBP004 detach-every-step: the state is cut at every time step while the backward runs
after the time loop."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import queries, spans_contain
from tbptt_lint.analysis.values import CUT, Status
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class DetachEveryStep(Rule):
    """The state is cut at every time step while the backward runs after the time loop.

    A cut inside the per-time-step loop stops the gradient at every step, so the backward
    after the loop sees a horizon of one step: the model cannot learn anything that spans two
    steps. Cut once per window, before the time loop.
    """

    code = "TBP004"
    name = "detach-every-step"
    severity = Severity.WARNING
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
cell = nn.GRUCell(8, 16)
for x, y in windows:
    loss = 0
    for t in range(x.size(0)):
        h = h.detach()
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )
    VALID = (
        """
import torch.nn as nn
cell = nn.GRUCell(8, 16)
for x, y in windows:
    loss = 0
    h = h.detach()
    for t in range(x.size(0)):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        ask = queries(model)
        reported: set[int] = set()
        for unit, read in model.reads():
            value = read.value
            loop = ask.innermost_loop(read.call)
            if loop is None or value.status != Status.FRESH or read.call.no_grad:
                continue
            if loop in unit.loops_with_backward:
                continue
            inside = [o for o in read.origins_of(CUT) if spans_contain(model, loop, o)]
            if not inside or id(inside[0]) in reported:
                continue
            origin = inside[0]
            site = ask.backward_after_loop(unit, loop)
            if site is None:
                continue
            reported.add(id(origin))
            message = (
                f"`{read.name}` is cut at every time step of the loop at line "
                f"{model.line(loop)}, but the backward at line {model.line(site.call)} runs "
                "after that loop, so the gradient reaches back only one step. Cut the state "
                "once per window, before the time loop"
            )
            yield model.finding(self.code, origin, message)
