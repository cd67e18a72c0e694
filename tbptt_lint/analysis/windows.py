"""Window loops: `for i in range(start, stop, stride)` and the slices `x[i:i + k]` they take.

Slice bounds are compared as linear forms (`i + k` is {i: 1, k: 1}), so `x[i:i + k]` and
`y[i + 1:i + 1 + k]` are both windows of length k.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import children

LinearForm = dict[str, int]


@dataclass
class WindowSlice:
    subscript: cst.Subscript
    sliced: str | None  # the name being sliced
    dimension: int  # which axis the window slice is on
    lower: LinearForm
    length: LinearForm | None  # None when the upper bound is open or not linear


@dataclass
class WindowLoop:
    loop: cst.For
    index: str
    range_call: cst.Call
    stride: LinearForm | None
    stop: cst.BaseExpression | None
    slices: list[WindowSlice]


def linear_form(node: cst.BaseExpression) -> LinearForm:
    if isinstance(node, cst.Integer):
        return {"": int(node.value, 0)}
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.Subtract)):
        sign = 1 if isinstance(node.operator, cst.Add) else -1
        form = dict(linear_form(node.left))
        for term, coefficient in linear_form(node.right).items():
            form[term] = form.get(term, 0) + sign * coefficient
        return {t: c for t, c in form.items() if c}
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return {t: -c for t, c in linear_form(node.expression).items()}
    text = dotted_name(node) or cst.Module(body=[]).code_for_node(node)
    return {text: 1}


def subtract(left: LinearForm, right: LinearForm) -> LinearForm:
    form = dict(left)
    for term, coefficient in right.items():
        form[term] = form.get(term, 0) - coefficient
    return {t: c for t, c in form.items() if c}


def _range_of(iterable: cst.BaseExpression) -> tuple[cst.Call, int] | None:
    """The `range(...)` call of a loop and which target element is its index."""
    if isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "range":
        return iterable, 0
    is_enumerate = isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "enumerate"
    if is_enumerate and iterable.args:  # type: ignore[attr-defined]
        inner = _range_of(iterable.args[0].value)  # type: ignore[attr-defined]
        if inner is not None:
            return inner[0], 1
    return None


def window_loops(loops: Iterable[cst.CSTNode]) -> Iterator[WindowLoop]:
    for node in loops:
        if not isinstance(node, cst.For):
            continue
        found = _range_of(node.iter)
        if found is None:
            continue
        call, position = found
        target = node.target
        if isinstance(target, cst.Tuple):
            if position >= len(target.elements):
                continue
            target = target.elements[position].value  # type: ignore[assignment]
        index = dotted_name(target)
        if index is None:
            continue
        args = [a.value for a in call.args]
        stride = linear_form(args[2]) if len(args) == 3 else None
        stop = args[1] if len(args) >= 2 else (args[0] if args else None)
        yield WindowLoop(node, index, call, stride, stop, list(_slices(node.body, index)))


def _slices(body: cst.CSTNode, index: str) -> Iterator[WindowSlice]:
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            continue
        stack.extend(children(node))
        if not isinstance(node, cst.Subscript):
            continue
        for dimension, element in enumerate(node.slice):
            part = element.slice
            if not isinstance(part, cst.Slice) or part.lower is None:
                continue
            lower = linear_form(part.lower)
            if index not in lower:
                continue
            length = subtract(linear_form(part.upper), lower) if part.upper is not None else None
            yield WindowSlice(node, dotted_name(node.value), dimension, lower, length)
