"""Fast traversal of libcst trees.

`CSTNode.children` runs a visitor over the node every time it is read, which made it the
single largest cost of the analysis. Reading the dataclass fields directly, and skipping the
whitespace and punctuation that no rule looks at, is several times faster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import libcst as cst

# Scopes of their own: a walk of one function's statements does not enter them.
NESTED_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)

_SKIPPED_PREFIXES = (
    "whitespace",
    "lpar",
    "rpar",
    "comma",
    "semicolon",
    "leading_lines",
    "lines_after",
    "trailing_whitespace",
    "header",
    "footer",
    "colon",
    "dot",
    "equal",
    "star",
    "newline",
)
_FIELDS: dict[type, tuple[str, ...]] = {}
# isinstance against libcst's abstract base classes goes through abc and is slow; the answer
# per concrete type never changes.
_IS_NODE: dict[type, bool] = {}


def _is_node(value: object) -> bool:
    value_type = type(value)
    known = _IS_NODE.get(value_type)
    if known is None:
        known = _IS_NODE[value_type] = isinstance(value, cst.CSTNode)
    return known


def _fields_of(node_type: type) -> tuple[str, ...]:
    fields = _FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            f.name
            for f in dataclasses.fields(node_type)
            if not f.name.startswith(_SKIPPED_PREFIXES)
        )
        _FIELDS[node_type] = fields
    return fields


def children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Child nodes in source order, without formatting nodes."""
    for name in _fields_of(type(node)):
        value = getattr(node, name)
        if type(value) in (list, tuple):
            for item in value:
                if _is_node(item):
                    yield item
        elif _is_node(value):
            yield value


def descendants(roots: Sequence[cst.CSTNode], stop: tuple[type, ...] = ()) -> Iterator[cst.CSTNode]:
    """Every node under `roots` (pre-order), not entering nodes of the `stop` types."""
    # The hottest loop of the analysis: `children` is inlined, and whether a type is one of
    # `stop` is asked of abc once per type, not once per node.
    stops = _stop_table(stop) if stop else None
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        node_type = type(node)
        if stops is not None:
            stopped = stops.get(node_type)
            if stopped is None:
                stopped = stops[node_type] = isinstance(node, stop)
            if stopped:
                continue
        found: list[cst.CSTNode] = []
        for name in _fields_of(node_type):
            value = getattr(node, name)
            if type(value) in (list, tuple):
                found.extend(item for item in value if _is_node(item))
            elif _is_node(value):
                found.append(value)
        found.reverse()
        stack.extend(found)


_STOP_TABLES: dict[tuple[type, ...], dict[type, bool]] = {}


def _stop_table(stop: tuple[type, ...]) -> dict[type, bool]:
    table = _STOP_TABLES.get(stop)
    if table is None:
        table = _STOP_TABLES[stop] = {}
    return table


# Answers that depend on a node alone (libcst trees never change), asked again and again: the
# statements of a loop are read on every pass to a fixed point, by every interpreter of a
# unit (the summary passes, the model) and by the rules. (kind, id(node)) -> (node, answer);
# the node is kept so that its id cannot be reused while the answer is held. Emptied by
# `forget_node_facts` (once per file, or block in phase 1) and when it grows past the limit.
_NODE_FACTS: dict[tuple[str, int], tuple[cst.CSTNode, object]] = {}
NODE_FACTS_LIMIT = 400_000
T = TypeVar("T")
N = TypeVar("N", bound=cst.CSTNode)


def node_fact(kind: str, node: N, compute: Callable[[N], T]) -> T:
    """`compute(node)`, worked out once per node while the file is read. What it returns is
    shared: it must not be changed."""
    key = (kind, id(node))
    cached = _NODE_FACTS.get(key)
    if cached is not None and cached[0] is node:
        return cached[1]  # type: ignore[return-value]
    answer = compute(node)
    if len(_NODE_FACTS) >= NODE_FACTS_LIMIT:
        _NODE_FACTS.clear()
    _NODE_FACTS[key] = (node, answer)
    return answer


def forget_node_facts() -> None:
    _NODE_FACTS.clear()
