"""Cuts of a function's own parameter that nothing uses afterwards (TBP003).

`def manage_gradients(self, memory, step): memory = memory.detach(); return False` rebinds
the parameter only: the caller's tensor is not cut, and the detached one is dropped when the
function returns. Read from the function's text, without the interpreter: only functions
whose parameter is rebound to its own `detach()` outside any loop and never read again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.names import dotted_name, method_name
from tbptt_lint.analysis.walk import children, descendants

# `p = p.detach()` somewhere in the text: without one, no tree walk is needed.
SELF_CUT_TEXT = re.compile(r"(?m)^[ \t]*(\w+)[ \t]*=[ \t]*\1\.detach\(\s*\)")


def dead_parameter_cuts(
    module: cst.Module, source: str | None = None
) -> Iterator[tuple[cst.FunctionDef, cst.Assign, str]]:
    """(function, `p = p.detach()`, p) for every such dead cut of a parameter in the module's
    functions and methods, nested ones included. `source`, the module's text, when known."""
    if source is not None and not SELF_CUT_TEXT.search(source):
        return
    for node in descendants([module]):
        if isinstance(node, cst.FunctionDef):
            for assign, name in _dead_cuts(node):
                yield node, assign, name


def _dead_cuts(function: cst.FunctionDef) -> Iterator[tuple[cst.Assign, str]]:
    params = {
        p.name.value
        for p in (*function.params.posonly_params, *function.params.params)
        if p.name.value not in ("self", "cls")
    }
    params |= {p.name.value for p in function.params.kwonly_params}
    if not params:
        return
    order: list[tuple[cst.CSTNode, bool]] = []
    _walk(list(children(function.body)), False, order)
    for index, (node, in_loop) in enumerate(order):
        if in_loop or not isinstance(node, cst.Assign):
            continue
        name = _self_cut(node)
        if name is None or name not in params:
            continue
        end = index + 1 + sum(1 for _ in descendants([node])) - 1
        if not any(isinstance(later, cst.Name) and later.value == name for later, _ in order[end:]):
            yield node, name


def _walk(nodes: list[cst.CSTNode], in_loop: bool, order: list[tuple[cst.CSTNode, bool]]) -> None:
    """Pre-order, with whether each node is inside a loop; nested scopes are entered too, as
    a closure may read the parameter."""
    for node in nodes:
        order.append((node, in_loop))
        inner = in_loop or isinstance(node, (cst.For, cst.While))
        _walk(list(children(node)), inner, order)


def _self_cut(node: cst.Assign) -> str | None:
    """`p = p.detach()`: the name, else None."""
    if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
        return None
    value = node.value
    if not (isinstance(value, cst.Call) and method_name(value) == "detach" and not value.args):
        return None
    name = node.targets[0].target.value
    return name if dotted_name(value.func.value) == name else None  # type: ignore[attr-defined]
