"""TBP007 no-truncation: the backward runs only after the whole sequence (full BPTT)."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.context import CELL_MODULES
from tbptt_lint.analysis.events import RecurrentCall, StateRead
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.queries import queries
from tbptt_lint.analysis.values import CUT, LEAF, RESET, Status
from tbptt_lint.analysis.windows import window_loops
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class NoTruncation(Rule):
    """The backward runs only after the whole sequence: full BPTT.

    State is carried through every step of the sequence loop and the only backward comes after
    that loop, outside any loop that would split the sequence into windows. That is full
    backpropagation through time: memory grows with the sequence length and no truncation
    happens. Often intended for short sequences; for long ones, back-propagate per window and
    cut the state between windows. Off by default: select `TBP007` to enable it.
    """

    code = "TBP007"
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
cell = nn.GRUCell(8, 16)
loss = 0
for start in range(0, 100, 10):
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
loss.backward()
""",
    )
    VALID = (
        """
import torch.nn as nn
cell = nn.GRUCell(8, 16)
for start in range(0, 100, 10):
    loss = 0
    h = h.detach()
    for t in range(start, start + 10):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        ask = queries(model)
        for unit in model.units:
            for call in unit.recurrent_calls:
                if call.no_grad or not call.loops:
                    continue
                reads = unit.reads_of(call)
                statuses = {r.value.status for r in reads}
                if Status.LIVE not in statuses or statuses & {Status.STALE, Status.PARTIAL}:
                    continue
                if any(r.value.how in (CUT, LEAF) for r in reads):
                    continue
                loop = call.loops[-1]
                if loop in unit.loops_with_backward:
                    continue
                site = ask.backward_after_loop(unit, loop)
                if site is None:
                    continue
                # A per-step loop of cells with a backward per sequence is how every
                # truncated loop looks inside its window, so only a loop over windows of a
                # sequence module, or a backward outside every loop, is full BPTT for sure.
                if site.loops and not _over_windows(call, loop):
                    continue
                if not site.loops and _one_sequence_per_call(unit.unit, call, reads):
                    continue
                outermost = loop
                message = (
                    f"the state of the recurrent call at line {model.line(call.call)} is carried "
                    f"through the whole loop at line {model.line(outermost)} and the only "
                    "backward runs after it: this is full BPTT, with memory growing with the "
                    "sequence. Back-propagate per window and cut the state between windows"
                )
                yield model.finding(self.code, site.call, message)


def _one_sequence_per_call(unit: cst.CSTNode, call: RecurrentCall, reads: list[StateRead]) -> bool:
    """A function that makes its state anew, runs one loop over the steps and back-propagates
    once after it (a `forward` that does its own backward, a per-batch helper): each call is
    one sequence with its own backward, as a truncated window looks from inside. Whether
    the caller hands it a whole stream cannot be told here, so it is not reported."""
    if not isinstance(unit, cst.FunctionDef) or len(call.loops) != 1:
        return False
    hows = {how for read in reads for how in read.how_by_origin.values()}
    return RESET in hows and hows <= {RESET, Status.LIVE.name}


def _over_windows(call: RecurrentCall, loop: cst.CSTNode) -> bool:
    if call.module_class is not None and call.module_class in CELL_MODULES:
        return False
    return any(window.loop is loop and window.slices for window in window_loops([loop]))
