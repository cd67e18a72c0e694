"""What the interpreter may assume about `if` conditions along one path.

A path remembers the truth of the conditions it took (`(text, truth)` pairs). `not x`, `a or b`
and `a and b` are read through, so that `if not random_iter:` before a loop and `if
random_iter or h is None:` inside it are known to be complementary, and an assumption that no
statement of a loop can change is kept into that loop's body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import libcst as cst

from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants

Assumption = tuple[str, bool]


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _inner(test: cst.BaseExpression) -> cst.BaseExpression:
    """`not x` -> x; other tests unchanged."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return test.expression
    return test


def _atoms(test: cst.BaseExpression) -> Iterator[cst.BaseExpression]:
    """The conditions a test is made of, through `not`, `and` and `or`."""
    test = _inner(test)
    yield test
    if isinstance(test, cst.BooleanOperation):
        yield from _atoms(test.left)
        yield from _atoms(test.right)


def mentions(text: str, name: str) -> bool:
    """Whether the condition `text` reads the variable `name` (`i` is not in `random_iter`)."""
    return name in text and re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text) is not None


class Conditions:
    """Texts and parts of the conditions of one unit, each worked out once: the interpreter
    asks about the same `if` on every path and every pass of a loop. Keyed by node identity
    (libcst nodes compare by identity); the nodes are kept, so an identity is never reused."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[cst.CSTNode, str]] = {}
        self._facts: dict[tuple[int, bool], frozenset[Assumption]] = {}
        self._loops: dict[int, tuple[cst.CSTNode, list[tuple[str, cst.BaseExpression]]]] = {}
        self._bound: dict[int, set[str]] = {}

    def text(self, node: cst.CSTNode) -> str:
        known = self._texts.get(id(node))
        if known is None:
            # A plain name is its own text: no need to generate code for it.
            dotted = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
            known = self._texts[id(node)] = (node, dotted or _code(node))
        return known[1]

    def truth_of(self, test: cst.BaseExpression, known: Mapping[str, bool]) -> bool | None:
        """The truth of `test` on a path that assumed `known`, or None when not known."""
        if not known:
            return None
        text = self.text(test)
        if text in known:
            return known[text]
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            inner = self.truth_of(test.expression, known)
            return None if inner is None else not inner
        if isinstance(test, cst.BooleanOperation):
            left, right = self.truth_of(test.left, known), self.truth_of(test.right, known)
            decisive = isinstance(test.operator, cst.Or)  # the value that settles it
            if decisive in (left, right):
                return decisive
            if left is not None and right is not None:
                return left
        return None

    def facts_of(self, test: cst.BaseExpression, truth: bool) -> frozenset[Assumption]:
        """What a path learns from taking `test` as `truth`: the test itself, and its parts
        where they are settled (both sides of a false `or`, of a true `and`, the operand of
        `not`)."""
        key = (id(test), truth)
        found = self._facts.get(key)
        if found is None:
            parts = {(self.text(test), truth)}
            if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
                parts |= self.facts_of(test.expression, not truth)
            elif isinstance(test, cst.BooleanOperation) and (
                isinstance(test.operator, cst.Or) != truth
            ):
                parts |= self.facts_of(test.left, truth) | self.facts_of(test.right, truth)
            found = self._facts[key] = frozenset(parts)
        return found

    def loop_invariant(self, loop: cst.For | cst.While, wanted: set[str]) -> frozenset[str]:
        """Those of the conditions `wanted` that the loop tests and that no pass of it can
        change: they read no name the loop binds and call nothing. An assumption about one of
        them made before the loop still holds in its body."""
        cached = self._loops.get(id(loop))
        if cached is None:
            atoms = [
                (self.text(atom), atom)
                for node in descendants([loop.body], stop=NESTED_SCOPES)
                if isinstance(node, cst.If)
                for atom in _atoms(node.test)
            ]
            cached = self._loops[id(loop)] = (loop, atoms)
        found: set[str] = set()
        for text, atom in cached[1]:
            if text not in wanted or text in found or not _is_plain(atom):
                continue
            bound = self._bound.get(id(loop))
            if bound is None:
                bound = self._bound[id(loop)] = names_bound_in(loop)
            if not _names(atom) & bound:
                found.add(text)
        return frozenset(found)


def names_bound_in(loop: cst.For | cst.While) -> set[str]:
    """Names a loop binds: its target and what its body assigns."""
    assigned = _bound_by(loop.target) if isinstance(loop, cst.For) else set()
    return assigned | names_bound_under(loop.body)


def names_bound_under(root: cst.CSTNode) -> set[str]:
    """Names bound anywhere in `root` (a compound statement's own target included), nested
    functions, classes and lambdas left out."""
    assigned: set[str] = set()
    for node in descendants([root], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                assigned |= _bound_by(target.target)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For)):
            assigned |= _bound_by(node.target)
        elif isinstance(node, (cst.AsName, cst.NamedExpr)):
            assigned |= _bound_by(node.name if isinstance(node, cst.AsName) else node.target)
    return assigned


def reads_any(node: cst.CSTNode, names: set[str]) -> bool:
    """Whether an expression reads one of `names` (or an attribute of one)."""
    return bool(_names(node) & names)


def _bound_by(target: cst.CSTNode) -> set[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for element in target.elements for n in _bound_by(element.value)}
    if isinstance(target, cst.StarredElement):
        return _bound_by(target.value)
    name = dotted_name(target) if isinstance(target, cst.BaseExpression) else None
    if name is not None:
        return {name}
    if isinstance(target, cst.Subscript):
        return _bound_by(target.value)
    return set()


def _names(node: cst.CSTNode) -> set[str]:
    """Names a condition reads, each dotted name with its prefixes (`args.random` reads
    `args` too: rebinding `args` changes it)."""
    found: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        dotted = dotted_name(current) if isinstance(current, (cst.Name, cst.Attribute)) else None
        if dotted is not None:
            parts = dotted.split(".")
            found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
            continue
        stack.extend(children(current))
    return found


def _is_plain(node: cst.CSTNode) -> bool:
    """A condition without calls, whose value cannot change unless a name it reads does."""
    return not any(
        isinstance(n, (cst.Call, cst.Await, cst.Yield)) for n in descendants([node], stop=())
    )
