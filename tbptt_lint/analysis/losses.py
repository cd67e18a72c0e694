"""Losses that a function back-propagates for its caller, or hands back after it did.

`net.train_step(loss, optim)` runs `loss.backward()` inside the method, and
`batch_loss = self._train_batch(x)` or `loss = model(x)` returns a loss whose backward already
ran. A caller that sums that loss as a tensor (`total += loss`) keeps every graph alive
although no backward is written in its own body (TBP006). The facts are read from the
function's text: a backward's roots, and the names they are computed from by plain
arithmetic (`rules/flow.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.events import BackwardSite, Loops
from tbptt_lint.analysis.index import FunctionFacts
from tbptt_lint.analysis.interpreter import RECEIVER_METHODS
from tbptt_lint.analysis.names import ImportMap, dotted_name, method_name
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants, node_fact
from tbptt_lint.rules.flow import graph_names, loss_names

BACKWARD_FUNCTIONS = frozenset({"torch.autograd.backward"})
# Calls of these are how an object is called: `model(x)` runs `Model.forward`.
CALL_METHODS = ("forward", "__call__")


@dataclass(frozen=True)
class LossFacts:
    # (position after `self`, name) of each parameter a backward of the function runs through.
    params: tuple[tuple[int, str], ...] = ()
    # Some return path hands back a value whose graph the function's own backward ran through.
    returns: bool = False


NO_LOSS_FACTS = LossFacts()


def loss_facts(
    function: cst.FunctionDef,
    params: Sequence[str],
    imports: ImportMap,
    functions: Mapping[str, FunctionFacts],
    class_name: str | None,
) -> LossFacts:
    """What a function's backward runs through, seen from its callers. Names are followed
    without regard to order, so a parameter rebound to something else, and a returned name
    last bound to a cut (`loss = loss.item()`), count as nothing: when unsure, nothing."""
    walked = node_fact("loss_walk", function, _walk)
    nodes = walked.nodes
    roots = [
        root
        for node in walked.calls
        for root in _backward_roots(node, imports, functions, class_name)  # type: ignore[arg-type]
    ]
    if not roots:
        return NO_LOSS_FACTS
    flows = node_fact("loss_flows", function, _walk_flows)
    propagated = _propagated(roots, flows, imports)
    overwritten = node_fact("loss_overwritten", function, _walk_overwritten)
    found = tuple(
        (position, name)
        for position, name in enumerate(params)
        if name in propagated and name not in overwritten
    )
    carriers = _carriers(propagated, flows, imports)
    returns = any(_returns_graph(node, nodes, carriers, imports) for node in nodes)
    return LossFacts(found, returns)


@dataclass(frozen=True)
class _Walked:
    """What `loss_facts` reads of a function whatever the file around it: worked out once per
    function (the summary passes ask again)."""

    nodes: tuple[cst.CSTNode, ...]
    calls: tuple[cst.CSTNode, ...]


def _walk(function: cst.CSTNode) -> _Walked:
    nodes = tuple(descendants([function.body], stop=NESTED_SCOPES))  # type: ignore[attr-defined]
    return _Walked(nodes, tuple(node for node in nodes if isinstance(node, cst.Call)))


def _walk_flows(function: cst.CSTNode) -> tuple[tuple[str, cst.BaseExpression], ...]:
    return tuple(_flows(node_fact("loss_walk", function, _walk).nodes))


def _walk_overwritten(function: cst.CSTNode) -> frozenset[str]:
    return frozenset(_overwritten(node_fact("loss_walk", function, _walk).nodes))


def _backward_roots(
    call: cst.Call,
    imports: ImportMap,
    functions: Mapping[str, FunctionFacts],
    class_name: str | None,
) -> Iterator[cst.BaseExpression]:
    """What a call back-propagates: `loss` in `loss.backward()`, `self.manual_backward(loss)`,
    `torch.autograd.backward(loss)`, or the arguments a helper of the file back-propagates."""
    method = method_name(call)
    if method == "backward":
        yield call.func.value  # type: ignore[attr-defined]
        return
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    if method == "manual_backward" or imports.qualify(dotted_name(call.func)) in (
        BACKWARD_FUNCTIONS
    ):
        yield from positional[:1]
        return
    callee = dotted_name(call.func)
    if callee is None:
        return
    facts = functions.get(callee)
    if facts is None and class_name is not None and callee.startswith("self."):
        facts = functions.get(f"{class_name}.{callee[5:]}")
    if facts is not None:
        yield from _arguments_at(call, facts.backprop_params)


def _arguments_at(
    call: cst.Call, params: Iterable[tuple[int, str]]
) -> Iterator[cst.BaseExpression]:
    if any(arg.star for arg in call.args):
        return  # `f(*args)`: which parameter gets what is unknown
    positional = [arg.value for arg in call.args if arg.keyword is None]
    keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
    for position, name in params:
        if position < len(positional):
            yield positional[position]
        elif name in keywords:
            yield keywords[name]


def _flows(nodes: Iterable[cst.CSTNode]) -> Iterator[tuple[str, cst.BaseExpression]]:
    """(name, what it is computed from): `t = expr`, `t += expr`, `t.append(expr)`."""
    for node in nodes:
        if isinstance(node, cst.Assign):
            for target in node.targets:
                name = dotted_name(target.target)
                if name is not None:
                    yield name, node.value
        elif isinstance(node, cst.AugAssign) and isinstance(
            node.operator, (cst.AddAssign, cst.SubtractAssign)
        ):
            name = dotted_name(node.target)
            if name is not None:
                yield name, node.value
        elif isinstance(node, cst.Call) and method_name(node) == "append" and len(node.args) == 1:
            name = dotted_name(node.func.value)  # type: ignore[attr-defined]
            if name is not None:
                yield name, node.args[0].value


def _propagated(
    roots: Iterable[cst.BaseExpression],
    flows: Sequence[tuple[str, cst.BaseExpression]],
    imports: ImportMap,
) -> set[str]:
    """The names a backward runs through: its roots and, back along plain arithmetic, what
    they are computed from (`loss` of `scaled = loss / k`). Factors that may be plain numbers
    are left out (see `loss_names`'s `strict`)."""
    found: set[str] = set()
    for root in roots:
        found |= loss_names(root, imports, strict=True)
    sources = [(target, loss_names(value, imports, strict=True)) for target, value in flows]
    changed = True
    while changed:
        changed = False
        for target, names in sources:
            if target in found and not names <= found:
                found |= names
                changed = True
    return found


def _carriers(
    propagated: set[str], flows: Sequence[tuple[str, cst.BaseExpression]], imports: ImportMap
) -> set[str]:
    """The back-propagated names and, forward along plain arithmetic, what is computed from
    them: `total` of `total += weighted_loss`."""
    found = set(propagated)
    sources = [(target, loss_names(value, imports)) for target, value in flows]
    changed = True
    while changed:
        changed = False
        for target, names in sources:
            if target not in found and names & found:
                found.add(target)
                changed = True
    return found


def _overwritten(nodes: Iterable[cst.CSTNode]) -> set[str]:
    """Names some plain assignment rebinds without reading them: a parameter so rebound may
    not be what the backward ran through."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, cst.Assign):
            read = graph_names(node.value)
            for target in node.targets:
                for element in _bound(target.target):
                    if element not in read:
                        found.add(element)
        elif isinstance(node, (cst.For, cst.With)):
            targets = (
                [node.target]
                if isinstance(node, cst.For)
                else [item.asname.name for item in node.items if item.asname is not None]
            )
            for target in targets:  # type: ignore[assignment]
                found.update(_bound(target))  # type: ignore[arg-type]
    return found


def _bound(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _bound(element.value)]
    if isinstance(target, cst.StarredElement):
        return _bound(target.value)
    name = dotted_name(target)
    return [name] if name is not None else []


def _returns_graph(
    node: cst.CSTNode, nodes: Sequence[cst.CSTNode], carriers: set[str], imports: ImportMap
) -> bool:
    """A `return` of one value (not a tuple) that passes on a back-propagated name, last bound
    before it to something other than a number or a cut."""
    if not isinstance(node, cst.Return) or node.value is None:
        return False
    if isinstance(node.value, (cst.Tuple, cst.List, cst.Dict)):
        return False
    if not _hands_on_tensor(node.value):
        return False
    names = loss_names(node.value, imports) & carriers
    return any(not _last_bound_to_number(name, node, nodes) for name in names)


# Tensor methods whose result keeps the graph of the tensor they are called on: those that
# hold the receiver's values, and reductions and copies of it.
GRAPH_KEEPING_METHODS = RECEIVER_METHODS | {"mean", "sum", "clone"}


def _hands_on_tensor(node: cst.BaseExpression) -> bool:
    """Whether a returned expression is a name, arithmetic on one, or a graph-keeping tensor
    method of one: `loss.get_loss()` on a user's loss object may return a number, so it
    hands on nothing the analysis can vouch for."""
    if isinstance(node, (cst.Name, cst.Attribute, cst.Subscript)):
        return True
    if isinstance(node, cst.BinaryOperation):
        return _hands_on_tensor(node.left) or _hands_on_tensor(node.right)
    if isinstance(node, cst.UnaryOperation):
        return _hands_on_tensor(node.expression)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return node.func.attr.value in GRAPH_KEEPING_METHODS and _hands_on_tensor(node.func.value)
    return False


def _last_bound_to_number(name: str, before: cst.CSTNode, nodes: Sequence[cst.CSTNode]) -> bool:
    last: cst.CSTNode | None = None
    for node in nodes:
        if node is before:
            break
        if isinstance(node, (cst.Assign, cst.AugAssign)):
            targets = (
                [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            )
            if any(name in _bound(target) for target in targets):
                last = node
    return isinstance(last, cst.Assign) and not graph_names(last.value)


# ------------------------------------------------------------------ at the call sites


def call_loss_facts(call: cst.Call, context: FileContext, class_name: str | None) -> LossFacts:
    """What a call's function back-propagates, resolved as the interpreter resolves calls: a
    function of the run, `self.method`, a method of an object whose class is known, the
    `forward` of a module object. For an object of unknown class, a method (not `forward`)
    counts only when every class of the run that defines it agrees."""
    callee = dotted_name(call.func)
    if callee is None:
        return NO_LOSS_FACTS
    facts = context.functions.get(callee)
    if facts is None and class_name is not None and callee.startswith("self."):
        facts = context.functions.get(f"{class_name}.{callee[5:]}")
    if facts is not None:
        return LossFacts(facts.backprop_params, facts.returns_backprop)
    instance, _, method = callee.rpartition(".")
    if instance and callee not in context.constructions:
        if instance.split(".")[0] in context.imports.aliases or method in CALL_METHODS:
            return NO_LOSS_FACTS
        owner = context.class_of(instance, class_name)
        if owner is not None:
            return _agreed(context.methods_of_class(owner, method))
        found = context.methods_named(method)
        if _defined_elsewhere(context, method, found):
            return NO_LOSS_FACTS
        return _agreed(found)
    # An object called: `model(x)`, or `self.model(x)` with `self.model = Wrapper(...)`.
    owner = context.class_of(callee, class_name)
    if owner is None:
        return NO_LOSS_FACTS
    for method in CALL_METHODS:
        found = context.methods_of_class(owner, method)
        if found:
            return _agreed(found)
    return NO_LOSS_FACTS


def _defined_elsewhere(context: FileContext, method: str, found: Sequence[FunctionFacts]) -> bool:
    """Whether this file defines `method` more often than its classes with facts do: a class
    whose `method` runs no backward may be the one called. (Classes of other files are
    known only by the methods phase 1 summarised.)"""
    local = len(context.method_keys(method))
    return context.source.count(f"def {method}(") > local


def _agreed(found: Sequence[FunctionFacts]) -> LossFacts:
    if not found:
        return NO_LOSS_FACTS
    params = set(found[0].backprop_params)
    for facts in found[1:]:
        params &= set(facts.backprop_params)
    return LossFacts(tuple(sorted(params)), all(facts.returns_backprop for facts in found))


def has_loss_helpers(context: FileContext, source: str) -> bool:
    """Whether the file calls, by name, a function or method of the file or the run that
    back-propagates for its callers, or an object of a class whose `forward` or `__call__`
    does: a cheap test before any unit is read for it."""
    called: set[str] = set()
    for name, facts in context.functions.items():
        if facts.backprop_params or facts.returns_backprop:
            owner, _, method = name.rpartition(".")
            called.add(method)
            if method in CALL_METHODS:
                called.update(
                    built
                    for built, construction in context.constructions.items()
                    if construction.qualified_class.rsplit(".", 1)[-1] == owner
                )
    for method, facts_of in context.run.by_method.items():
        if any(f.backprop_params or f.returns_backprop for f in facts_of):
            called.add(method)
    for class_name, methods in context.run.by_class.items():
        if any(f.returns_backprop for m in CALL_METHODS for f in methods.get(m, ())):
            called.update(
                built
                for built, construction in context.constructions.items()
                if construction.qualified_class.rsplit(".", 1)[-1] == class_name
            )
    return any(f"{name.rpartition('.')[2]}(" in source for name in called - set(CALL_METHODS))


@dataclass
class LossSite:
    """A call that back-propagates a loss for the caller (`roots`: the arguments), or hands
    one back (`roots`: the name it is bound to)."""

    site: BackwardSite
    returned: bool


def loss_sites(
    body: Sequence[cst.CSTNode], context: FileContext, class_name: str | None
) -> list[LossSite]:
    """The calls of a unit whose function back-propagates a loss it is given or hands back,
    each with the loops around it (as the interpreter records them)."""
    found: list[LossSite] = []
    _walk_sites(list(body), (), context, class_name, found)
    return found


def _walk_sites(
    nodes: list[cst.CSTNode],
    loops: Loops,
    context: FileContext,
    class_name: str | None,
    found: list[LossSite],
) -> None:
    for node in nodes:
        if isinstance(node, NESTED_SCOPES):
            continue
        if isinstance(node, cst.Call):
            _note_call(node, None, loops, context, class_name, found)
        elif isinstance(node, cst.Assign) and isinstance(node.value, cst.Call):
            target = node.targets[0].target if len(node.targets) == 1 else None
            bound = target if target is not None and dotted_name(target) is not None else None
            _note_call(node.value, bound, loops, context, class_name, found)
            _walk_sites(list(children(node.value)), loops, context, class_name, found)
            continue
        inner = loops + (node,) if isinstance(node, (cst.For, cst.While)) else loops
        _walk_sites(list(children(node)), inner, context, class_name, found)


def _note_call(
    call: cst.Call,
    bound: cst.BaseExpression | None,
    loops: Loops,
    context: FileContext,
    class_name: str | None,
    found: list[LossSite],
) -> None:
    if any(site.site.call is call for site in found):
        return
    facts = call_loss_facts(call, context, class_name)
    callee = dotted_name(call.func)
    roots = tuple(_arguments_at(call, facts.params))
    if roots:
        found.append(LossSite(BackwardSite(call, loops, False, roots, via_helper=callee), False))
    if facts.returns:
        # Bound to a name (`loss = fit(x)`), or added as it is (`total += fit(x)`: no root).
        bound_roots = (bound,) if bound is not None else ()
        site = BackwardSite(call, loops, False, bound_roots, via_helper=callee)
        found.append(LossSite(site, True))


def sums_in_loop(body: Sequence[cst.CSTNode]) -> bool:
    """Whether a loop of the unit adds to something: `total += x`, `t = t + x`,
    `xs.append(x)` (what TBP006 looks at), before a unit is interpreted for it."""
    for node in descendants(body, stop=NESTED_SCOPES):
        if isinstance(node, (cst.For, cst.While)):
            for inner in descendants([node.body], stop=NESTED_SCOPES):
                if _adds(inner):
                    return True
    return False


def sums_on_self(body: Sequence[cst.CSTNode]) -> bool:
    """Whether the unit adds to an attribute of its object outside any loop of its own
    (`self.total += loss`, `self.losses.append(loss)`): a method run once per update keeps
    that total from one call to the next (TBP006), before a unit is interpreted for it."""
    for node in descendants(body, stop=(*NESTED_SCOPES, cst.For, cst.While)):
        if _adds(node) and _target_on_self(node):
            return True
    return False


def _target_on_self(node: cst.CSTNode) -> bool:
    targets: list[cst.BaseExpression]
    if isinstance(node, cst.AugAssign):
        targets = [node.target]
    elif isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        targets = [node.func.value]
    else:
        return False
    return any((dotted_name(t) or "").startswith("self.") for t in targets)


def _adds(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.AugAssign):
        return isinstance(node.operator, (cst.AddAssign, cst.SubtractAssign))
    if isinstance(node, cst.Call):
        return method_name(node) == "append"
    if isinstance(node, cst.Assign) and isinstance(node.value, cst.BinaryOperation):
        read = graph_names(node.value)
        return any(dotted_name(t.target) in read for t in node.targets)
    return False


def unit_body(unit: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(unit, cst.Module):
        return list(unit.body)
    return list(unit.body.body)  # type: ignore[attr-defined]
