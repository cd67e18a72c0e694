"""TBP006 loss-accumulated-with-graph: a loss is accumulated across iterations together with
its graph."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.interpreter import names_in, target_names
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.diagnostics import UNSAFE, Edit, Finding, Fix, Severity
from tbptt_lint.rules.base import Rule


class LossAccumulatedWithGraph(Rule):
    """A loss is accumulated across iterations together with its graph.

    `total += loss` or `losses.append(loss)` for logging keeps every window's loss tensor, and
    with it every window's graph, alive until the accumulator goes away: memory grows with
    every window although each graph was already back-propagated. Accumulate a number instead:
    `loss.item()`, `float(loss)` or `loss.detach()`. Accumulating the very value that is
    back-propagated (gradient accumulation) is fine.
    """

    code = "TBP006"
    name = "loss-accumulated-with-graph"
    severity = Severity.WARNING
    fix_availability = UNSAFE

    INVALID = (
        """
total_loss = 0
for x, y in batches:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    loss = criterion(out, y)
    loss.backward()
    total_loss += loss
""",
    )
    VALID = (
        """
total_loss = 0
for x, y in batches:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    loss = criterion(out, y)
    loss.backward()
    total_loss += loss.item()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            roots = {}
            for site in unit.backwards:
                for root in site.roots:
                    name = dotted_name(root)
                    if name is not None:
                        roots.setdefault(name, site)
            for accumulation in unit.accumulations:
                site = roots.get(accumulation.value)
                if site is None or accumulation.accumulator in roots:
                    continue
                loop = accumulation.loops[-1] if accumulation.loops else None
                if loop is None or loop not in site.loops:
                    continue
                if _reset_inside(loop, accumulation.accumulator, accumulation.node):
                    continue
                name = accumulation.value
                message = (
                    f"`{name}` is back-propagated at line {model.line(site.call)} and then "
                    f"accumulated into `{accumulation.accumulator}` with its graph, which keeps "
                    f"every window's graph alive. Accumulate `{name}.item()` (or "
                    f"`{name}.detach()`) instead"
                )
                fix = _item_instead(model, accumulation.node, name)
                yield model.finding(self.code, accumulation.node, message, fix)


def _reset_inside(loop: cst.CSTNode, accumulator: str, accumulation: cst.CSTNode) -> bool:
    """Whether the loop body re-creates the accumulator, so it lives for one pass only."""
    body = loop.body  # type: ignore[attr-defined]
    for node in descendants([body], stop=(cst.FunctionDef, cst.Lambda)):
        if not isinstance(node, cst.Assign) or node is accumulation:
            continue
        bound = {name for target in node.targets for name in target_names(target.target)}
        if accumulator in bound and accumulator not in names_in(node.value):
            return True
    return False


def _item_instead(model: FileModel, accumulation: cst.CSTNode, name: str) -> Fix | None:
    """Append `.item()` to the one place the back-propagated loss is accumulated. Unsafe: a
    loss that is not a single number makes `.item()` raise, and later code may expect a
    tensor."""
    if isinstance(accumulation, (cst.AugAssign, cst.Assign)):
        roots: list[cst.CSTNode] = [accumulation.value]
    elif isinstance(accumulation, cst.Call):
        roots = [arg.value for arg in accumulation.args]
    else:
        return None
    uses = [
        node
        for node in descendants(roots, stop=(cst.Lambda, cst.Call))
        if isinstance(node, (cst.Name, cst.Attribute)) and dotted_name(node) == name
    ]
    if len(uses) != 1:
        return None
    line, column, end_line, end_column = model.span(uses[0])
    edit = Edit(".item()", (end_line, end_column), (end_line, end_column))
    return Fix(f"Accumulate `{name}.item()`", UNSAFE, (edit,))
