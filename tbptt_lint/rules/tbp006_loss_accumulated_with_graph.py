"""TBP006 loss-accumulated-with-graph: a loss is accumulated across iterations together with
its graph."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.interpreter import target_names
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import children
from tbptt_lint.diagnostics import Finding, Severity
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
                yield model.finding(self.code, accumulation.node, message)


def _reset_inside(loop: cst.CSTNode, accumulator: str, accumulation: cst.CSTNode) -> bool:
    """Whether the loop body re-creates the accumulator, so it lives for one pass only."""
    body = loop.body  # type: ignore[attr-defined]
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Assign) and node is not accumulation:
            for target in node.targets:
                if accumulator in target_names(target.target):
                    value = node.value
                    if dotted_name(value) != accumulator and accumulator not in _names(value):
                        return True
        if not isinstance(node, (cst.FunctionDef, cst.Lambda)):
            stack.extend(children(node))
    return False


def _names(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        name = dotted_name(current) if isinstance(current, cst.BaseExpression) else None
        if name is not None:
            found.add(name)
        stack.extend(children(current))
    return found
