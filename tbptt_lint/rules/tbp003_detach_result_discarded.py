"""TBP003 detach-result-discarded: the result of an out-of-place `detach()` is thrown away."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

from tbptt_lint.analysis.deadcuts import dead_parameter_cuts
from tbptt_lint.analysis.events import DiscardedDetach, UnitEvents
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.queries import queries
from tbptt_lint.diagnostics import SAFE, Finding, Fix
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.fixes import (
    container_kind,
    elementwise_cut,
    is_whole_statement,
    rebind_detached,
    replace_node,
)


class DetachResultDiscarded(Rule):
    """The result of an out-of-place `detach()` is thrown away.

    `tensor.detach()` returns a new tensor and leaves the original attached to its graph, so
    `hidden.detach()` as a statement (or `for s in state: s.detach()`) cuts nothing: the state
    still leaks into the next window. Assign the result, or use the in-place `detach_()`.
    Objects whose own `detach()` works in place (custom state classes) are not reported.
    """

    code = "TBP003"
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
                if discarded.method:
                    message = _cutting_method_message(discarded)
                if discarded.helper:
                    call = f"{discarded.helper}({name})"
                    message = (
                        f"`{call}` returns the cut state and the result is thrown away, so "
                        f"`{name}` stays attached to the graph and leaks into the next window. "
                        f"Write `{name} = {call}`"
                    )
                    yield model.finding(self.code, discarded.node, message)
                    continue
                fix = _assign_result(model, unit, discarded)
                yield model.finding(self.code, discarded.node, message, fix)
            leaked_states = queries(model).leaked_states(unit)
            for cut in unit.alias_cuts:
                if cut.state not in leaked_states:
                    continue
                message = (
                    f"`{cut.alias}` is a local copy taken from `{cut.state}`; cutting the copy "
                    f"leaves `{cut.state}` attached to the graph, and the loop passes "
                    f"`{cut.state}` on uncut. Cut `{cut.state}` itself, or write the cut copies "
                    f"back into it"
                )
                yield model.finding(self.code, cut.node, message)
        source = model.context.source or None
        for function, assign, name in dead_parameter_cuts(model.module, source):
            message = (
                f"`{name} = {name}.detach()` rebinds only the parameter `{name}` of "
                f"`{function.name.value}()`, and nothing reads it afterwards: the caller's "
                f"tensor stays attached to the graph and leaks into the next window. Return the "
                f"detached tensor and assign it where `{function.name.value}()` is called"
            )
            yield model.finding(self.code, assign, message)


def _cutting_method_message(discarded: DiscardedDetach) -> str:
    """Inside a state class's own `detach()`: its callers cut nothing."""
    name, state = discarded.target, discarded.state
    if state == name:
        advice = f"`{name} = {name}.detach()` (or `{name}.detach_()`)"
    else:
        advice = (
            f"`{name}.detach_()`, or assign the detached tensors back "
            f"(`{state} = [{name}.detach() for {name} in {state}]`, or a tuple like it)"
        )
    return (
        f"`{name}.detach()` returns a new tensor and the result is thrown away, so "
        f"`{discarded.method}()` cuts nothing: `{state}` stays attached to the graph, and "
        f"every caller that relies on it to cut the state leaks into the next window. "
        f"Write {advice}"
    )


def _assign_result(model: FileModel, unit: UnitEvents, discarded: DiscardedDetach) -> Fix | None:
    """`h.detach()` becomes `h = h.detach()`; `for s in hidden: s.detach()` becomes the
    element-wise rebinding of `hidden`, as a tuple or a list like the state it cuts."""
    node = discarded.node
    if isinstance(node, (cst.ListComp, cst.GeneratorExp)):
        return None  # `[s.detach() for s in hidden]`: which container to build is not known
    if discarded.state != discarded.target and discarded.loops:
        # `for s in hidden: s.detach()`: the loop, not the call, is what gets rewritten.
        node = discarded.loops[-1]
    elif isinstance(node, cst.Call):
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        if receiver is None or dotted_name(receiver) is None:
            return None  # `hidden[0].detach()`: assigning into the container would not cut it
        if not is_whole_statement(model, node):
            return None
        cut = rebind_detached(discarded.target)
        return Fix(f"Assign the result: `{cut}`", SAFE, (replace_node(model, node, cut),))
    if not isinstance(node, cst.For) or node.orelse is not None or node.asynchronous:
        return None
    variable = node.target.value if isinstance(node.target, cst.Name) else None
    state = discarded.state
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    if variable is None or dotted_name(node.iter) != state or not _only_detaches(body, variable):
        return None
    reads = [read for read in unit.reads.values() if read.name == state]
    kind = container_kind(model, reads, reads[0].call if reads else None)
    if kind not in ("tuple", "list"):
        return None
    cut = elementwise_cut(state, kind, variable)
    return Fix(
        f"Rebind `{state}` to its detached elements", SAFE, (replace_node(model, node, cut),)
    )


def _only_detaches(body: Sequence[cst.BaseStatement], variable: str) -> bool:
    """The loop body is the single statement `variable.detach()`."""
    if len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine):
        return False
    statements = body[0].body
    if len(statements) != 1 or not isinstance(statements[0], cst.Expr):
        return False
    call = statements[0].value
    return (
        isinstance(call, cst.Call)
        and not call.args
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "detach"
        and dotted_name(call.func.value) == variable
    )
