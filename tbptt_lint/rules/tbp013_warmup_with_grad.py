"""TBP013 warmup-with-grad: warm-up steps run with gradients on and no cut before the gradient
window."""

from __future__ import annotations

from collections.abc import Iterator

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.values import Status
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule


class WarmupWithGrad(Rule):
    """Warm-up steps run with gradients on and no cut before the gradient window.

    Burn-in steps meant only to settle the state are recorded in the graph when they run with
    gradients on, and without a cut between warm-up and window the backward reaches through
    them too: the horizon becomes warm-up plus window instead of the window. Run the warm-up
    under `torch.no_grad()` or cut the state after it.
    """

    code = "TBP013"
    name = "warmup-with-grad"
    severity = Severity.WARNING
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
cell = nn.GRUCell(8, 16)
for x, y in batches:
    h = h.detach()
    for t in range(5):
        h = cell(x[t], h)
    loss = 0
    for t in range(5, 15):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )
    VALID = (
        """
import torch
import torch.nn as nn
cell = nn.GRUCell(8, 16)
for x, y in batches:
    h = h.detach()
    with torch.no_grad():
        for t in range(5):
            h = cell(x[t], h)
    loss = 0
    for t in range(5, 15):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            calls = {id(c.call): c for c in unit.recurrent_calls}
            reported: set[int] = set()
            for read in unit.reads.values():
                if read.value.status != Status.LIVE or read.call.no_grad:
                    continue
                origin = calls.get(id(read.value.origin))
                if origin is None or origin is read.call or origin.no_grad:
                    continue
                if origin.callee != read.call.callee or not origin.loops:
                    continue
                warmup_loop = origin.loops[-1]
                if warmup_loop in read.call.loops or warmup_loop in unit.loops_with_backward:
                    continue
                if (
                    not any(loop in unit.loops_with_backward for loop in read.call.loops)
                    and not unit.backwards
                ):
                    continue
                if id(origin.call) in reported:
                    continue
                reported.add(id(origin.call))
                message = (
                    f"the warm-up loop at line {model.line(warmup_loop)} runs with gradients on "
                    f"and its state flows uncut into the gradient window at line "
                    f"{model.line(read.call.call)}, so the backward reaches through the warm-up "
                    "too. Run the warm-up under `torch.no_grad()` or cut the state after it"
                )
                yield model.finding(self.code, origin.call, message)
