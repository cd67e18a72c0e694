"""Which names an expression passes on with their autograd graph, read from its text.

Shared by the rules that follow a loss or a step's output through plain expressions
(TBP006, TBP013). A cut (`.detach()`, `.item()`, `float(...)`, `.data`) passes nothing on.
"""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.names import ImportMap, dotted_name, method_name
from tbptt_lint.analysis.walk import children

CUT_METHODS = frozenset({"detach", "detach_", "item", "tolist", "numpy"})
CUT_FUNCTIONS = frozenset({"float", "int", "bool", "len", "str", "repr", "round"})
# Functions whose result carries the graph of every argument: `torch.stack(losses)`,
# `sum(losses)`. Any other call (`criterion(out, y)`) makes something new.
COMBINING_FUNCTIONS = frozenset({"stack", "cat", "sum", "mean", "add", "mul", "div"})


def is_cut(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Attribute):
        return node.attr.value == "data"
    if not isinstance(node, cst.Call):
        return False
    if method_name(node) in CUT_METHODS:
        return True
    return dotted_name(node.func) in CUT_FUNCTIONS


def graph_names(node: cst.CSTNode) -> set[str]:
    """Every dotted name read in an expression outside a cut: `head(h)` reads `head` and
    `h`; `h.detach()` reads nothing."""
    return set(_graph_names(node))


def _graph_names(node: cst.CSTNode) -> Iterator[str]:
    if is_cut(node) or isinstance(node, cst.Lambda):
        return
    dotted = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
    if dotted is not None:
        # `logits.log_softmax` reads `logits`.
        parts = dotted.split(".")
        yield from (".".join(parts[: i + 1]) for i in range(len(parts)))
        return
    for child in children(node):
        yield from _graph_names(child)


def loss_names(node: cst.CSTNode, imports: ImportMap, strict: bool = False) -> set[str]:
    """Names whose value an expression passes on as it is, up to arithmetic: `loss / n`,
    `loss * bs`, `loss.mean()`, `torch.stack(losses).sum()`, `sum(losses)`. A call that
    makes something new from its arguments (`criterion(out, y)`, `F.mse_loss(out, y)`)
    passes on none.

    `strict` keeps only what is surely the loss rather than a factor scaling it: the
    dividend of `loss / n`, the one name of `0.1 * kl`, and nothing of `loss * ntokens`, where
    either may be the number."""
    return set(_loss_names(node, imports, strict))


def _loss_names(node: cst.CSTNode, imports: ImportMap, strict: bool = False) -> Iterator[str]:
    if is_cut(node):
        return
    if strict and isinstance(node, cst.BinaryOperation):
        yield from _strict_operands(node, imports)
        return
    if isinstance(node, (cst.Name, cst.Attribute)):
        dotted = dotted_name(node)
        if dotted is not None and dotted.split(".")[0] not in imports.aliases:
            yield dotted
        return
    parts: list[cst.CSTNode] = []
    if isinstance(node, cst.BinaryOperation):
        parts = [node.left, node.right]
    elif isinstance(node, cst.UnaryOperation):
        parts = [node.expression]
    elif isinstance(node, (cst.Tuple, cst.List)):
        parts = [element.value for element in node.elements]
    elif isinstance(node, cst.Subscript):
        parts = [node.value]
    elif isinstance(node, cst.IfExp):
        parts = [node.body, node.orelse]
    elif isinstance(node, cst.Call):
        parts = _passed_on(node, imports)
    for part in parts:
        yield from _loss_names(part, imports, strict)


def _strict_operands(node: cst.BinaryOperation, imports: ImportMap) -> Iterator[str]:
    left = set(_loss_names(node.left, imports, strict=True))
    if isinstance(node.operator, (cst.Add, cst.Subtract)):
        yield from left | set(_loss_names(node.right, imports, strict=True))
    elif isinstance(node.operator, cst.Multiply):
        right = set(_loss_names(node.right, imports, strict=True))
        if not (left and right):
            yield from left | right
    elif isinstance(node.operator, (cst.Divide, cst.FloorDivide, cst.Power)):
        yield from left


def _passed_on(call: cst.Call, imports: ImportMap) -> list[cst.CSTNode]:
    """The parts of a call whose value its result carries on."""
    function = call.func
    arguments: list[cst.CSTNode] = [arg.value for arg in call.args]
    if isinstance(function, cst.Attribute):
        receiver = dotted_name(function.value)
        if receiver is None or receiver.split(".")[0] not in imports.aliases:
            # A method of the value (`loss.mean()`, `(loss * w).sum()`, `loss.add(reg)`).
            combining = function.attr.value in COMBINING_FUNCTIONS
            return [function.value] + (arguments if combining else [])
    # A function: `torch.stack(losses)` and `sum(losses)` carry their arguments on.
    callee = dotted_name(function) or ""
    return arguments if callee.rpartition(".")[2] in COMBINING_FUNCTIONS else []
