"""TBP004 detach-every-step: the state is cut at every time step while the backward runs
after the time loop."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import per_step_fresh_state
from tbptt_lint.analysis.values import CUT
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class DetachEveryStep(Rule):
    """The state is cut at every time step while the backward runs after the time loop.

    A cut inside the per-time-step loop stops the gradient at every step, so the backward
    after the loop sees a horizon of one step: the model cannot learn anything that spans two
    steps. Cut once per window, before the time loop.
    """

    code = "TBP004"
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
        reported: set[int] = set()
        for fresh in per_step_fresh_state(model, CUT):
            origin = fresh.origins[0]
            if id(origin) in reported:
                continue
            reported.add(id(origin))
            # The model's own code (its `forward` detaching what it returns) may be the cut.
            callee = next((c.callee for c in fresh.unit.recurrent_calls if c.call is origin), None)
            where = f" inside `{callee}`" if callee else ""
            instead = f", not inside `{callee}`" if callee else ""
            message = (
                f"`{fresh.read.name}` is cut{where} at every time step of the loop at line "
                f"{model.line(fresh.loop)}, but the backward at line "
                f"{model.line(fresh.backward.call)} runs after that loop, so the gradient "
                "reaches back only one step. Cut the state once per window, before the time "
                f"loop{instead}"
            )
            yield model.finding(self.code, origin, message)
