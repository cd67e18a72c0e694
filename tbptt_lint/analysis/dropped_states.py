"""A state fetched for a step and then not passed to it.

`history = [initial]`, and each step's new state goes in (`mem, loss = model(seg)`,
`history.append(mem)`): entry i is the state that step i should start from. A loop that takes
`mems = history[i]` and then calls `model(seg)` without it, never reading `mems` at all, starts
every step from the model's own initial state: nothing flows between steps.

Read from the syntax of one function: the list must start with a state in it (a list of
outputs that starts empty is a log, not a history), the fetched name must be read nowhere in
the function, and the call must run with gradients.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.interpreter import names_in
from tbptt_lint.analysis.names import dotted_name, target_names
from tbptt_lint.analysis.walk import children, descendants

SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
# A list bound with something in it (`buf = [h0]`), and something appended to a list.
SEEDED_LIST = re.compile(r"=[ \t]*\[[ \t]*[\w(]")


def may_drop_fetched_state(source: str) -> bool:
    """Cheap text test: whether the file can hold a history list at all."""
    return ".append(" in source and SEEDED_LIST.search(source) is not None


NO_GRAD_WORDS = ("no_grad", "inference_mode")


@dataclass
class DroppedState:
    call: cst.Call  # the step called without the state
    name: str  # the fetched state: `mems`
    fetch: cst.CSTNode  # where it was fetched
    history: str  # the list the steps' states are kept in


def dropped_states(unit: cst.CSTNode, owner: cst.ClassDef | None = None) -> Iterator[DroppedState]:
    """`owner`: the class of a method, whose other methods may start a history on `self`."""
    if isinstance(unit, cst.FunctionDef) and any(
        _says_no_grad(_decorator_callee(d)) for d in unit.decorators
    ):
        return
    statements = _body(unit)
    smalls = [node for node, _ in _walk(statements) if not _is_compound(node)]
    seeded_on_self: set[str] = set()
    if owner is not None:
        for member in owner.body.body:
            if isinstance(member, cst.FunctionDef):
                found = _seeded(n for n, _ in _walk(_body(member)) if not _is_compound(n))
                seeded_on_self |= {n for n in found if n.startswith("self.")}
    histories = _histories(smalls, seeded_on_self)
    if not histories:
        return
    read: set[str] | None = None
    for loop, no_grad in _walk(statements):
        if no_grad or not isinstance(loop, (cst.For, cst.While)):
            continue
        for name, fetch, history in _fetches(loop, histories):
            if read is None:
                # Read anywhere, nested functions included (a closure may use the state).
                read = _names_read(list(descendants([unit])))
            if name in read:
                continue
            call = _step_call(loop, histories[history])
            if call is not None:
                yield DroppedState(call, name, fetch, history)


def _body(unit: cst.CSTNode) -> Sequence[cst.CSTNode]:
    if isinstance(unit, cst.FunctionDef):
        return unit.body.body if isinstance(unit.body, cst.IndentedBlock) else ()
    return unit.body if isinstance(unit, cst.Module) else ()


def _is_compound(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.BaseCompoundStatement)


def _walk(
    statements: Sequence[cst.CSTNode], no_grad: bool = False
) -> Iterator[tuple[cst.CSTNode, bool]]:
    """Compound statements and the small statements (`x = ...`, `f(x)`) inside them, and
    whether they run under no-grad, without walking expressions or nested scopes."""
    for statement in statements:
        if isinstance(statement, SCOPES):
            continue
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                yield small, no_grad
            continue
        inner = no_grad or (
            isinstance(statement, cst.With)
            and any(_says_no_grad(_item_callee(i)) for i in statement.items)
        )
        yield statement, no_grad
        for block in _blocks(statement):
            yield from _walk(block, inner)


def _blocks(statement: cst.CSTNode) -> Iterator[Sequence[cst.CSTNode]]:
    for name in ("body", "orelse", "finalbody"):
        part = getattr(statement, name, None)
        if isinstance(part, cst.IndentedBlock):
            yield part.body
        elif isinstance(part, (cst.Else, cst.Finally)) and isinstance(part.body, cst.IndentedBlock):
            yield part.body.body
        elif isinstance(part, cst.If):
            yield [part]
    for handler in getattr(statement, "handlers", ()):
        if isinstance(handler.body, cst.IndentedBlock):
            yield handler.body.body


def _says_no_grad(expression: cst.BaseExpression) -> bool:
    name = dotted_name(expression) or ""
    return any(word in name for word in NO_GRAD_WORDS)


def _decorator_callee(decorator: cst.Decorator) -> cst.BaseExpression:
    node = decorator.decorator
    return node.func if isinstance(node, cst.Call) else node


def _seeded(nodes: Iterable[cst.CSTNode]) -> set[str]:
    """Names bound to a list that starts with something in it: `buf = [h0]`."""
    seeded: set[str] = set()
    for node in nodes:
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.List):
            bound = [n for t in node.targets for n in target_names(t.target)]
            if node.value.elements and len(bound) == 1:
                seeded.add(bound[0])
    return seeded


def _histories(nodes: list[cst.CSTNode], seeded_elsewhere: set[str]) -> dict[str, set[str]]:
    """Lists that start with a state in them (`buf = [h0]`) and receive a value bound from a
    call (`h, loss = model(x)` ... `buf.append(h)`): list -> the callees whose results go in."""
    seeded = _seeded(nodes) | seeded_elsewhere
    made_by: dict[str, set[str]] = {}  # name -> callees it is bound from
    for node in nodes:
        if not isinstance(node, cst.Assign):
            continue
        bound = [n for t in node.targets for n in target_names(t.target)]
        if isinstance(node.value, cst.Call):
            callee = dotted_name(node.value.func)
            if callee is not None:
                for name in bound:
                    made_by.setdefault(name, set()).add(callee)
    histories: dict[str, set[str]] = {}
    for small in nodes:
        node = small.value if isinstance(small, cst.Expr) else None  # type: ignore[assignment]
        if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
            continue
        owner = dotted_name(node.func.value)
        if owner not in seeded or node.func.attr.value != "append" or len(node.args) != 1:
            continue
        stored = dotted_name(node.args[0].value)
        if stored in made_by:
            histories.setdefault(owner, set()).update(made_by[stored])
    return histories


def _names_read(nodes: list[cst.CSTNode]) -> set[str]:
    """Plain names the function reads (not those it binds, nor keywords and attribute names:
    `model(mems=prev)` reads `prev`, `model.mems` reads `model`)."""
    bound: set[int] = set()
    for node in nodes:
        if isinstance(node, cst.Arg) and node.keyword is not None:
            bound.add(id(node.keyword))
        elif isinstance(node, cst.Attribute):
            bound.add(id(node.attr))
        targets: list[cst.BaseExpression] = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AnnAssign, cst.For)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, (cst.Name, cst.Tuple, cst.List, cst.StarredElement)):
                bound.update(id(n) for n in descendants([target]) if isinstance(n, cst.Name))
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in bound}


def _item_callee(item: cst.WithItem) -> cst.BaseExpression:
    return item.item.func if isinstance(item.item, cst.Call) else item.item


def _fetches(
    loop: cst.For | cst.While, histories: dict[str, set[str]]
) -> Iterator[tuple[str, cst.CSTNode, str]]:
    """Names the loop's body binds from a history list (`mems = buf[i]`)."""
    body = loop.body.body if isinstance(loop.body, cst.IndentedBlock) else ()
    for node, _ in _walk(body):
        if not isinstance(node, cst.Assign):
            continue
        sources = names_in(node.value) & set(histories)
        if not sources:
            continue
        for target in node.targets:
            for element in _plain_names(target.target):
                if not element.value.startswith("_"):  # `_` and `_unused` say "not needed"
                    yield element.value, element, sorted(sources)[0]


def _plain_names(target: cst.BaseExpression) -> list[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _plain_names(e.value)]
    return []


def _step_call(loop: cst.For | cst.While, callees: set[str]) -> cst.Call | None:
    """The first call in the loop (outside any no-grad block) of a callee whose results the
    history keeps."""
    for node, no_grad in _calls(loop.body):
        if not no_grad and dotted_name(node.func) in callees:
            return node
    return None


def _calls(root: cst.CSTNode) -> Iterator[tuple[cst.Call, bool]]:
    stack: list[tuple[cst.CSTNode, bool]] = [(root, False)]
    order: list[tuple[cst.Call, bool]] = []
    while stack:
        node, no_grad = stack.pop()
        if isinstance(node, SCOPES):
            continue
        if isinstance(node, cst.With) and any(_says_no_grad(_item_callee(i)) for i in node.items):
            no_grad = True
        if isinstance(node, cst.Call):
            order.append((node, no_grad))
        stack.extend((child, no_grad) for child in reversed(list(children(node))))
    return iter(order)
