"""TBP006 loss-accumulated-with-graph: a loss is accumulated across iterations together with
its graph."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import chain

import libcst as cst

# A module, not its names: analysis.losses reads rules/flow.py, and so may be importing this.
from tbptt_lint.analysis import losses
from tbptt_lint.analysis.conditions import names_bound_under
from tbptt_lint.analysis.events import Accumulation, BackwardSite, UnitEvents
from tbptt_lint.analysis.interpreter import keyed_name, names_in
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import ImportMap, dotted_name, target_names
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants
from tbptt_lint.diagnostics import UNSAFE, Edit, Finding, Fix
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.flow import loss_names


class LossAccumulatedWithGraph(Rule):
    """A loss is accumulated across iterations together with its graph.

    `total += loss`, `avg += loss / n` or `losses.append(loss)` for logging keeps every
    window's loss tensor, and with it every window's graph, alive until the accumulator goes
    away: memory grows with every window although each graph was already back-propagated.
    Accumulate a number instead: `loss.item()`, `float(loss)` or `loss.detach()`.
    Accumulating the very value that is back-propagated (gradient accumulation) is fine.
    """

    code = "TBP006"

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
        imports = model.context.imports
        for unit in [*model.units, *model.loss_units]:
            if not unit.accumulations:
                continue
            handed = losses.loss_sites(losses.unit_body(unit.unit), model.context, unit.class_name)
            if not unit.backwards and not handed:
                continue
            returned = {id(s.site) for s in handed if s.returned}
            unit_handed = {id(s.site.call): s.site for s in handed if s.returned}
            # A helper's backward counts through the arguments its body back-propagates
            # (`handed`), not through every argument the call passes.
            own = [site for site in unit.backwards if site.via_helper is None]
            sites = [*own, *(s.site for s in handed)]
            propagated = _back_propagated(unit, sites, imports)
            scalars = _single_numbers(unit.unit, own)
            for accumulation in unit.accumulations:
                if accumulation.accumulator in propagated:
                    continue  # gradient accumulation: the sum itself is back-propagated
                found = _first_kept(
                    accumulation,
                    propagated,
                    imports,
                    unit.unit,
                    partial(_reach, unit, sites, imports),
                )
                if found is None:
                    inline = _handed_back(accumulation, unit_handed)
                    if inline is not None:
                        yield _inline_finding(self.code, model, accumulation, inline)
                    continue
                name, site, through = found
                if id(site) in returned:
                    how = f"by `{site.via_helper}(...)`, which hands it back,"
                elif site.via_helper and not through:
                    how = f"by `{site.via_helper}(...)`"
                else:
                    how = f"(through `{through}`)" if through else ""
                # `.item()` only for what a backward with no gradient starts from, which
                # torch requires to be a single number; anything else may hold more (the
                # output or state a loss is computed from) and is cut with `.detach()`.
                scalar = name in scalars
                advice = (
                    f"`{name}.item()` (or `{name}.detach()`)" if scalar else f"`{name}.detach()`"
                )
                message = (
                    f"`{name}` is back-propagated{' ' if how else ''}{how} at line "
                    f"{model.line(site.call)} and also "
                    f"accumulated into `{accumulation.accumulator}` with its graph, which keeps "
                    f"every window's graph alive. Accumulate {advice} instead"
                )
                # A total later read as a tensor (`total.item()`, `torch.stack(losses)`) would
                # break on a number: it keeps a tensor, cut.
                number = scalar and not _read_as_tensor(
                    unit.unit, accumulation.accumulator, model.context.imports
                )
                fix = _item_instead(model, accumulation.node, name, "item" if number else "detach")
                yield model.finding(self.code, accumulation.node, message, fix)


def _handed_back(
    accumulation: Accumulation, handed: dict[int, BackwardSite]
) -> BackwardSite | None:
    """A call whose function back-propagated what it returns, added as it is:
    `total += fit_batch(x, y)`, `total = total + 0.5 * self.step(x)`. The accumulator must
    outlive the call's pass through its loop."""
    if accumulation.added is None or not accumulation.loops:
        return None
    site = _passed_on_call(accumulation.added, handed)
    if site is None:
        return None
    loop = accumulation.loops[-1]
    if _reset_inside(loop, accumulation.accumulator, accumulation.node):
        return None
    return site


def _passed_on_call(node: cst.CSTNode, handed: dict[int, BackwardSite]) -> BackwardSite | None:
    if isinstance(node, cst.Call):
        if id(node) in handed:
            return handed[id(node)]
        method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
        if method in ("mean", "sum"):
            return _passed_on_call(node.func.value, handed)  # type: ignore[attr-defined]
        return None
    if isinstance(node, cst.BinaryOperation):
        return _passed_on_call(node.left, handed) or _passed_on_call(node.right, handed)
    if isinstance(node, cst.UnaryOperation):
        return _passed_on_call(node.expression, handed)
    return None


def _inline_finding(
    code: str, model: FileModel, accumulation: Accumulation, site: BackwardSite
) -> Finding:
    message = (
        f"`{site.via_helper}(...)` back-propagates the loss it hands back, which is "
        f"accumulated into `{accumulation.accumulator}` with its graph, which keeps every "
        f"window's graph alive. Accumulate its `.item()` (or `.detach()`) instead"
    )
    return model.finding(code, accumulation.node, message, None)


def _first_kept(
    accumulation: Accumulation,
    propagated: dict[str, list[tuple[BackwardSite, str | None]]],
    imports: ImportMap,
    unit: cst.CSTNode,
    reach: Callable[[cst.CSTNode], set[str]],
) -> tuple[str, BackwardSite, str | None] | None:
    """The first added name, and a backward through it, such that the accumulator outlives
    that backward's window: a loop holds both and does not make the accumulator anew, or
    the accumulator is kept on the object by a method outside any loop of its own, and the
    method does not make it anew on every call (the method is the window)."""
    for name in sorted(_added_names(accumulation, imports)):
        for site, through in propagated.get(name, ()):
            if _rebound_before(unit, accumulation.node, name, site, reach, imports):
                continue  # `loss = total / n` after the backward: a number, not its loss
            if not accumulation.loops:
                if _kept_across_calls(accumulation, site, unit):
                    return name, site, through
                continue
            loop = _shared_loop(accumulation, site)
            if loop is None:
                continue
            # Made anew on every pass of the loop around both, or of a loop inside it around
            # the accumulation (`new = []` per time step, filled layer by layer): it lives
            # for less than a window.
            inner = accumulation.loops[accumulation.loops.index(loop) :]
            if any(_reset_inside(lp, accumulation.accumulator, accumulation.node) for lp in inner):
                continue
            return name, site, through
    return None


def _added_names(accumulation: Accumulation, imports: ImportMap, strict: bool = False) -> set[str]:
    """The names an accumulation adds with their graph: `loss` in `total += loss * bs`."""
    if accumulation.added is None:
        return {accumulation.value} if accumulation.value else set()
    names: set[str] = set()
    for part in _record_values(accumulation.added):
        names |= loss_names(part, imports, strict)
    return names - {accumulation.accumulator}


def _record_values(added: cst.BaseExpression) -> list[cst.BaseExpression]:
    """What a record appended to a log keeps: the values of `{"loss": loss, "step": i}` or
    `dict(loss=loss)`; anything else is kept whole."""
    if isinstance(added, cst.Dict):
        return [e.value for e in added.elements if isinstance(e, cst.DictElement)]
    if (
        isinstance(added, cst.Call)
        and dotted_name(added.func) == "dict"
        and all(arg.keyword is not None for arg in added.args)
    ):
        return [arg.value for arg in added.args]
    return [added]


def _back_propagated(
    unit: UnitEvents,
    sites: list[BackwardSite],
    imports: ImportMap,
    skip: cst.CSTNode | None = None,
) -> dict[str, list[tuple[BackwardSite, str | None]]]:
    """Every name whose value some backward of the unit runs through, with those backwards:
    its roots (`loss` in `loss.backward()`, `losses` in `torch.stack(losses).sum()`, `loss` in
    `net.train_step(loss, opt)`, `batch_loss` of `batch_loss = self.train_batch(x)` when the
    method back-propagated what it returns), what is accumulated into them
    (`loss_sum = loss_sum + loss`), and what they are computed from by plain arithmetic
    (`total = ce + 0.1 * kl`). Factors that may be plain numbers are left out (`ntokens` in
    `loss_sum = loss_sum + loss * ntokens`): counting them up is no leak. Each backward comes
    with the root the name reaches it through (None: it is one).

    An assignment counts for a backward only when it can run before it: earlier in the unit,
    or in a loop around both. `loss = total / n` after the loop is not what the loop's
    backwards ran through, although an earlier `loss` is."""
    places = _places(unit.unit)
    found: dict[str, list[tuple[BackwardSite, str | None]]] = {}
    for site in sites:
        for root in site.roots:
            for name in loss_names(root, imports, strict=True):
                found.setdefault(name, []).append((site, None))
    flows = [
        (accumulation.accumulator, _added_names(accumulation, imports, strict=True), node)
        for accumulation in unit.accumulations
        for node in [accumulation.node]
    ]
    flows += [
        (target, loss_names(value, imports, strict=True), node)
        for target, value, node in _assignments(unit.unit)
        if node is not skip
    ]
    changed = True
    while changed:
        changed = False
        for target, names, node in flows:
            for site, through in list(found.get(target, ())):
                if not _may_precede(places, node, site.call):
                    continue
                for name in names:
                    reached = found.setdefault(name, [])
                    if all(known is not site for known, _ in reached):
                        reached.append((site, through or target))
                        changed = True
    return found


Places = dict[int, tuple[int, tuple[cst.CSTNode, ...]]]


def _places(unit: cst.CSTNode) -> Places:
    """Each statement's and call's order in the unit, and the loops around it."""
    places: Places = {}
    roots = list(unit.body) if isinstance(unit, cst.Module) else [unit.body]  # type: ignore[attr-defined]
    stack: list[tuple[cst.CSTNode, tuple[cst.CSTNode, ...]]] = [(r, ()) for r in reversed(roots)]
    while stack:
        node, loops = stack.pop()
        if isinstance(node, NESTED_SCOPES):
            continue
        places[id(node)] = (len(places), loops)
        inner = loops + (node,) if isinstance(node, (cst.For, cst.While)) else loops
        stack.extend((child, inner) for child in reversed(list(children(node))))
    return places


def _may_precede(places: Places, node: cst.CSTNode, call: cst.CSTNode) -> bool:
    """Whether `node` may run before `call`: earlier in the unit, or in a loop around both.
    Unknown places (a site the walk did not see) are taken to precede."""
    first, second = places.get(id(node)), places.get(id(call))
    if first is None or second is None:
        return True
    return first[0] < second[0] or any(loop in second[1] for loop in first[1])


def _assignments(
    unit: cst.CSTNode,
) -> Iterator[tuple[str, cst.BaseExpression, cst.CSTNode]]:
    roots = list(unit.body) if isinstance(unit, cst.Module) else [unit.body]  # type: ignore[attr-defined]
    for node in descendants(roots, stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                name = dotted_name(target.target)
                if name is not None:
                    yield name, node.value, node


def _rebound_before(
    unit: cst.CSTNode,
    accumulation: cst.CSTNode,
    name: str,
    site: BackwardSite,
    reach: Callable[[cst.CSTNode], set[str]],
    imports: ImportMap,
) -> bool:
    """Whether a statement of the accumulation's own block, between the statement that holds
    the backward and the accumulation, rebinds `name` to something made from no
    back-propagated value (`loss = total_loss / len(data)` after the batch loop, with
    `total_loss` summing `.item()`s): every way from that backward to the accumulation passes
    the rebinding, so what is accumulated is that value, not the loss the backward ran
    through."""
    block = _block_before(unit, accumulation)
    if block is None:
        return False
    holder = next(
        (
            index
            for index, statement in enumerate(block)
            if any(found is site.call for found in descendants([statement]))
        ),
        None,
    )
    if holder is None:
        return False  # the backward is not before the accumulation in this block
    for statement in reversed(block[holder + 1 :]):
        if not isinstance(statement, cst.SimpleStatementLine):
            if name in names_bound_under(statement):
                return False  # rebound inside a nested block: not on every way
            continue
        for small in reversed(statement.body):
            if not isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                continue
            targets = (
                [t.target for t in small.targets]
                if isinstance(small, cst.Assign)
                else [small.target]
            )
            if not any(dotted_name(t) == name for t in targets):
                if any(name in target_names(t) for t in targets):
                    return False  # unpacked or otherwise bound: unknown
                continue
            if not isinstance(small, cst.Assign) or small.value is None:
                return False
            made_from = loss_names(small.value, imports, strict=True)
            # What reaches a backward other than through this very rebinding (which, in a
            # loop, would carry its own names back to the backward of the next pass).
            return not (made_from & (reach(small) | {name}))
    return False


def _block_before(unit: cst.CSTNode, node: cst.CSTNode) -> list[cst.CSTNode] | None:
    """The statements before the one holding `node` in the block that holds it directly."""
    roots = list(unit.body) if isinstance(unit, cst.Module) else [unit.body]  # type: ignore[attr-defined]
    module = [unit] if isinstance(unit, cst.Module) else []
    nested = descendants(roots, stop=NESTED_SCOPES)
    for block in chain(module, nested):
        body = block.body if isinstance(block, (cst.IndentedBlock, cst.Module)) else None
        if not isinstance(body, (list, tuple)):
            continue
        for index, statement in enumerate(body):
            if isinstance(statement, cst.SimpleStatementLine) and any(
                found is node for found in descendants([statement])
            ):
                return list(body[:index])
    return None


def _reach(
    unit: UnitEvents, sites: list[BackwardSite], imports: ImportMap, skip: cst.CSTNode
) -> set[str]:
    """The names some backward runs through, leaving out the flow of one assignment."""
    return set(_back_propagated(unit, sites, imports, skip))


def _kept_across_calls(accumulation: Accumulation, site: BackwardSite, unit: cst.CSTNode) -> bool:
    """`self.total_loss = self.total_loss + loss` in a method that back-propagates `loss`
    itself, outside any loop of the method: the attribute outlives the call, so each call
    adds one more graph, unless the method makes the total anew on every call."""
    if not accumulation.accumulator.startswith("self.") or site.loops or site.via_helper:
        return False
    if not isinstance(unit, cst.FunctionDef):
        return False
    holders = {accumulation.accumulator, accumulation.accumulator.split("[", 1)[0]}
    return not _resets_every_pass(_block(unit.body), holders, accumulation.node)


def _shared_loop(accumulation: Accumulation, site: BackwardSite) -> cst.CSTNode | None:
    """The innermost loop around both the accumulation and the backward: the accumulator
    outlives a window unless that loop's body makes it anew."""
    shared = [loop for loop in accumulation.loops if loop in site.loops]
    return shared[-1] if shared else None


def _reset_inside(loop: cst.CSTNode, accumulator: str, accumulation: cst.CSTNode) -> bool:
    """Whether the loop body re-creates the accumulator on every pass, so it lives for one
    pass only. A reset under a test (`if step % log == 0: ...; running = 0`) runs now and
    then: the accumulator outlives the passes in between, and keeps their graphs."""
    body = loop.body  # type: ignore[attr-defined]
    # `stats["loss"]` is made anew with its entry (`stats["loss"] = 0.0`) or its container.
    holders = {accumulator, accumulator.split("[", 1)[0]}
    return _resets_every_pass(body.body, holders, accumulation)


def _resets_every_pass(
    statements: Sequence[cst.CSTNode], holders: set[str], accumulation: cst.CSTNode
) -> bool:
    """Whether every way through `statements` re-creates one of `holders`: an assignment at
    their own level (or in a `with` or `try` body), or one on each branch of an if."""
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            if any(_makes_anew(s, holders, accumulation) for s in statement.body):
                return True
        elif isinstance(statement, (cst.With, cst.Try)):
            if _resets_every_pass(_block(statement.body), holders, accumulation):
                return True
        elif isinstance(statement, cst.If) and _if_resets(statement, holders, accumulation):
            return True
    return False


def _if_resets(statement: cst.If, holders: set[str], accumulation: cst.CSTNode) -> bool:
    if not _resets_every_pass(_block(statement.body), holders, accumulation):
        return False
    orelse = statement.orelse
    if isinstance(orelse, cst.If):
        return _if_resets(orelse, holders, accumulation)
    if isinstance(orelse, cst.Else):
        return _resets_every_pass(_block(orelse.body), holders, accumulation)
    return False  # no else: the passes that skip the if keep the accumulator


def _block(body: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    if isinstance(body, cst.IndentedBlock):
        return body.body
    return [body] if isinstance(body, cst.SimpleStatementSuite) else []


def _makes_anew(node: cst.CSTNode, holders: set[str], accumulation: cst.CSTNode) -> bool:
    if isinstance(node, cst.SimpleStatementSuite):
        return any(_makes_anew(s, holders, accumulation) for s in node.body)
    if not isinstance(node, cst.Assign) or node is accumulation:
        return False
    bound = {
        name
        for target in node.targets
        for name in [*target_names(target.target), keyed_name(target.target)]
        if name is not None
    }
    return bool(bound & holders) and not holders & names_in(node.value)


def _single_numbers(unit: cst.CSTNode, sites: Sequence[BackwardSite]) -> set[str]:
    """Names surely holding one number where they are accumulated: what a plain
    `name.backward()` (no `gradient`) starts from, which torch requires to be one number, and
    the operands of the arithmetic it is computed by (`window_loss = window_loss + loss`:
    broadcasting never shrinks a shape, so a one-number sum has one-number operands). A name
    bound in other ways too (`loss = out` then `loss = loss.mean()`) is left out: one of its
    values may hold more."""
    bindings = _bindings(unit)

    def stable(name: str) -> bool:
        values = bindings.get(name, [])
        return len(values) <= 1 or all(
            v is not None and isinstance(v, (cst.BinaryOperation, cst.UnaryOperation, *NUMBERS))
            for v in values
        )

    found: set[str] = set()
    for site in sites:
        call = site.call
        if site.via_helper is not None or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value != "backward" or any(
            arg.keyword is None or arg.keyword.value == "gradient" for arg in call.args
        ):
            continue
        found |= {n for n in _operands(call.func.value) if stable(n)}
    pending = list(found)
    while pending:
        for value in bindings.get(pending.pop(), []):
            for name in _operands(value) if value is not None else ():
                if name not in found and stable(name):
                    found.add(name)
                    pending.append(name)
    return found


NUMBERS = (cst.Integer, cst.Float)


def _bindings(unit: cst.CSTNode) -> dict[str, list[cst.BaseExpression | None]]:
    """What each name of the unit is bound to (None: a part of something unpacked, a loop's
    target)."""
    roots = list(unit.body) if isinstance(unit, cst.Module) else [unit.body]  # type: ignore[attr-defined]
    bindings: dict[str, list[cst.BaseExpression | None]] = {}
    for node in descendants(roots, stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                whole = dotted_name(target.target)
                for name in target_names(target.target):
                    bindings.setdefault(name, []).append(node.value if name == whole else None)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)) and node.value is not None:
            augmented = dotted_name(node.target)
            if augmented is not None:
                bindings.setdefault(augmented, []).append(node.value)
        elif isinstance(node, (cst.For, cst.CompFor)):
            for name in target_names(node.target):
                bindings.setdefault(name, []).append(None)
    return bindings


def _operands(node: cst.BaseExpression) -> set[str]:
    """The names an arithmetic expression combines elementwise: `a` and `b` of `a + 0.5 * b`
    (a call's result, `x.size(0)`, is an operand whose names are not followed)."""
    if isinstance(node, (cst.Name, cst.Attribute)):
        name = dotted_name(node)
        return {name} if name is not None else set()
    if isinstance(node, cst.BinaryOperation) and isinstance(
        node.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Divide)
    ):
        return _operands(node.left) | _operands(node.right)
    if isinstance(node, cst.UnaryOperation):
        return _operands(node.expression)
    return set()


# Functions of torch that take numbers as well as tensors (`torch.tensor(losses)`).
NUMBER_TAKING = frozenset({"torch.tensor", "torch.as_tensor", "torch.Tensor", "torch.FloatTensor"})
# Methods of a list or a dict, which say nothing of what it holds.
CONTAINER_METHODS = frozenset(
    {"append", "extend", "insert", "clear", "copy", "pop", "keys", "values", "items", "get"}
)


def _read_as_tensor(unit: cst.CSTNode, accumulator: str, imports: ImportMap) -> bool:
    """Whether the unit reads the accumulator (or an element of it) as a tensor: a method or
    attribute of it (`total.item()`, `losses[-1].cpu()`), or an argument of a torch function
    (`torch.stack(losses)`), which a number in its place would break."""
    body = unit.body if isinstance(unit, cst.FunctionDef) else unit
    for node in descendants([body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Attribute) and node.attr.value not in CONTAINER_METHODS:
            inner = node.value
            if isinstance(inner, cst.Subscript):
                inner = inner.value
            if dotted_name(inner) == accumulator:
                return True
        elif isinstance(node, cst.Call):
            qualified = imports.qualify(dotted_name(node.func)) or ""
            if not qualified.startswith("torch.") or qualified in NUMBER_TAKING:
                continue
            if any(dotted_name(arg.value) == accumulator for arg in node.args):
                return True
    return False


def _item_instead(
    model: FileModel, accumulation: cst.CSTNode, name: str, method: str = "item"
) -> Fix | None:
    """Append `.item()` to the one place the back-propagated loss is accumulated (`.detach()`
    when it is not known to be one number, where `.item()` would raise). Unsafe: later code
    may expect a tensor, or a graph."""
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
    _line, _column, end_line, end_column = model.span(uses[0])
    edit = Edit(f".{method}()", (end_line, end_column), (end_line, end_column))
    return Fix(f"Accumulate `{name}.{method}()`", UNSAFE, (edit,))
