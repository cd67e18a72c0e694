"""TBP013 warmup-with-grad: warm-up steps run with gradients on and no cut before the gradient
window."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.events import RecurrentCall
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name, method_name, target_names
from tbptt_lint.analysis.values import Status
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.flow import graph_names


class WarmupWithGrad(Rule):
    """Warm-up steps run with gradients on and no cut before the gradient window.

    Burn-in steps meant only to settle the state are recorded in the graph when they run with
    gradients on, and without a cut between warm-up and window the backward reaches through
    them too: the horizon becomes warm-up plus window instead of the window. Run the warm-up
    under `torch.no_grad()` or cut the state after it. A loop that keeps its steps' outputs
    (a glimpse or attention loop feeding the loss) is not a warm-up.
    """

    code = "TBP013"
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
                if origin.callee != read.call.callee:
                    continue
                if _single_call_warmup(unit.unit, origin, read.call):
                    loops = read.call.loops
                    trained = (
                        loops[-1] in unit.loops_with_backward if loops else bool(unit.backwards)
                    )
                    if not trained or id(origin.call) in reported:
                        continue
                    reported.add(id(origin.call))
                    message = (
                        f"the warm-up call at line {model.line(origin.call)} runs with gradients "
                        "on, its output thrown away, and its state flows uncut into the "
                        f"gradient window at line {model.line(read.call.call)}, so the backward "
                        "reaches through the warm-up too. Run the warm-up under "
                        "`torch.no_grad()` or cut the state after it"
                    )
                    yield model.finding(self.code, origin.call, message)
                    continue
                if not origin.loops:
                    continue
                warmup_loop = origin.loops[-1]
                if warmup_loop in read.call.loops or warmup_loop in unit.loops_with_backward:
                    continue
                if _collects_outputs(warmup_loop, origin):
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


def _single_call_warmup(unit: cst.CSTNode, warmup: RecurrentCall, window: RecurrentCall) -> bool:
    """`_, h = rnn(x[:burn_in], h)` then `out, h = rnn(x[burn_in:], h)` in the same body: one
    call whose output is thrown away (bound to `_`, or to names read nowhere else), that runs
    over a slice of the sequence the window slices too, and whose state the window reads.
    Both outputs kept (a window run in two calls), other sequences, or a call in a loop of
    its own are not such a warm-up."""
    if warmup.loops != window.loops or warmup.statement is window.statement:
        return False
    if not isinstance(warmup.statement, cst.Assign) or len(warmup.statement.targets) != 1:
        return False
    base = _sliced_sequence(warmup.call)
    if base is None or base != _sliced_sequence(window.call):
        return False
    target = warmup.statement.targets[0].target
    if not isinstance(target, cst.Tuple):
        return False
    outputs = [n for n in target_names(target) if n not in warmup.states]
    if not outputs or len(outputs) == len(target_names(target)):
        return False  # the state is bound back, the output thrown away
    # A name read anywhere else in the unit keeps the output: only its binding may name it.
    roots = [unit.body] if isinstance(unit, cst.FunctionDef) else [unit]
    counts = {name: 0 for name in outputs}
    for node in descendants(roots, stop=NESTED_SCOPES):
        if isinstance(node, cst.Name) and node.value in counts:
            counts[node.value] += 1
    return all(name == "_" or counts[name] == 1 for name in outputs)


def _sliced_sequence(call: cst.Call) -> str | None:
    """`x` for a call whose first argument slices it (`rnn(x[:5], h)`, `rnn(x[:, 5:], h)`)."""
    first = call.args[0].value if call.args and call.args[0].keyword is None else None
    if not isinstance(first, cst.Subscript):
        return None
    if not any(isinstance(element.slice, cst.Slice) for element in first.slice):
        return None
    return dotted_name(first.value)


COLLECTING_METHODS = frozenset({"append", "extend", "insert", "add_"})
COMBINING_CALLS = frozenset({"cat", "stack"})


def _collects_outputs(loop: cst.CSTNode, call: RecurrentCall) -> bool:
    """Whether each pass of the loop keeps something made from the recurrent call's result,
    besides the state it passes on: `outputs.append(head(h))`, `loss = loss + f(out)`,
    `logits[t] = ...`. Then every step feeds what comes after the loop (the loss, as in a
    glimpse or attention loop), and the loop is part of the gradient window, not a warm-up."""
    statement = call.statement
    produced = (
        {n for t in statement.targets for n in target_names(t.target)}
        if isinstance(statement, cst.Assign)
        else set()
    )
    states = produced | set(call.states)
    tainted = set(produced)
    body = [node for node in descendants([loop.body], stop=NESTED_SCOPES)]  # type: ignore[attr-defined]
    # Twice: what a pass makes from the output may be collected earlier in the next pass.
    for _ in range(2):
        for node in body:
            if node is statement:
                continue
            if _collects(node, tainted, states):
                return True
            if isinstance(node, cst.Assign) and graph_names(node.value) & tainted:
                for target in node.targets:
                    tainted.update(n for n in target_names(target.target) if n not in states)
    return False


def _collects(node: cst.CSTNode, tainted: set[str], states: set[str]) -> bool:
    if isinstance(node, cst.AugAssign):
        return dotted_name(node.target) not in states and bool(graph_names(node.value) & tainted)
    if isinstance(node, cst.Call) and method_name(node) in COLLECTING_METHODS:
        return any(graph_names(arg.value) & tainted for arg in node.args)
    if not isinstance(node, cst.Assign) or not graph_names(node.value) & tainted:
        return False
    for target in node.targets:
        if isinstance(target.target, cst.Subscript):
            return True  # `outputs[t] = head(h)`
        name = dotted_name(target.target)
        if name is None or name in states:
            continue
        if _accumulates(node.value, name):
            return True
    return False


def _accumulates(value: cst.BaseExpression, name: str) -> bool:
    """`total = total + x`, `seq = torch.cat([seq, x])`: the value extends the name itself."""
    if isinstance(value, cst.BinaryOperation):
        return name in (dotted_name(value.left), dotted_name(value.right))
    if isinstance(value, cst.Call) and (dotted_name(value.func) or "").rpartition(".")[2] in (
        COMBINING_CALLS
    ):
        first = value.args[0].value if value.args else None
        elements = first.elements if isinstance(first, (cst.Tuple, cst.List)) else ()
        return any(dotted_name(element.value) == name for element in elements)
    return False
