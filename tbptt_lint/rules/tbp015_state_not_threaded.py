"""TBP015 state-not-threaded: carried state is reset inside the loop or never passed back to
the recurrent call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import libcst as cst

from tbptt_lint.analysis.context import CELL_MODULES, RECURRENT_MODULES, Construction
from tbptt_lint.analysis.dropped_states import dropped_states
from tbptt_lint.analysis.events import StatelessCall, UnitEvents
from tbptt_lint.analysis.interpreter import handed_on, names_in
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name, method_name, target_names
from tbptt_lint.analysis.queries import per_step_fresh_state, queries, spans_contain
from tbptt_lint.analysis.stateless_cells import stateless_cell_steps
from tbptt_lint.analysis.step_resets import per_step_attribute_resets
from tbptt_lint.analysis.values import CUT, LEAF, RESET
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class StateNotThreaded(Rule):
    """Carried state is reset inside the loop or never passed back to the recurrent call.

    When the per-step loop re-initialises the state on every step, or the cell's new state is
    stored under another name and the old one is passed in again, or the state is cut to be
    carried on but the torch recurrent module is then called without it (`out, h = gru(x)`),
    no information flows from one step to the next: the network is trained as if every step
    were the first. Initialise the state once per sequence or window, and pass the returned
    state back in.
    """

    code = "TBP015"
    runtime_visible = True

    INVALID = (
        """
import torch
import torch.nn as nn
cell = nn.RNNCell(8, 16)
for x, y in windows:
    loss = 0
    for t in range(x.size(0)):
        h = torch.zeros(4, 16)
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )
    VALID = (
        """
import torch
import torch.nn as nn
cell = nn.RNNCell(8, 16)
for x, y in windows:
    loss = 0
    h = torch.zeros(4, 16)
    for t in range(x.size(0)):
        h = cell(x[t], h)
        loss = loss + (h - y[t]).pow(2).mean()
    loss.backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        yield from self._resets_per_step(model)
        yield from self._states_never_passed_back(model)
        yield from self._reset_inside_forward(model)
        yield from self._cut_but_left_out(model)
        yield from self._cut_but_never_stepped(model)
        yield from attribute_reset_inside_forward(model, self.code)
        yield from attribute_reset_every_step(model, self.code)
        yield from fetched_state_left_out(model, self.code)
        yield from cell_stepped_without_state(model, self.code)

    def _cut_but_never_stepped(self, model: FileModel) -> Iterator[Finding]:
        for call, callee, names, cut in _cut_but_never_stepped_calls(model):
            shown = ", ".join(names)
            message = (
                f"`{shown}` is cut at line {model.line(cut)} to be carried on, but the new "
                f"state `{callee}` returns at line {model.line(call)} is never stored back, so "
                "every call starts from the same state and nothing is carried. Bind it: "
                f"`out, {names[0] if len(names) == 1 else '(' + shown + ')'} = {callee}(...)`"
            )
            yield model.finding(self.code, call, message)

    def _cut_but_left_out(self, model: FileModel) -> Iterator[Finding]:
        """`h = h.detach()` and then `out, h = gru(x)`: the loop cuts the state to carry it
        on, but the call leaves it out, so every call starts from zeros."""
        for unit in model.units:
            if isinstance(unit.unit, cst.FunctionDef) and unit.unit.name.value == "forward":
                continue  # a model's own forward: its caller decides what state goes in
            for event in unit.stateless_calls:
                if event.no_grad or _passed_elsewhere(unit, event):
                    continue
                found = _thrown_away_cut(model, unit, event)
                if found is None:
                    continue
                name, cut = found
                callee = model.code(event.call.func)
                message = (
                    f"`{name}` is cut at line {model.line(cut)} to be carried on, but "
                    f"`{callee}` at line {model.line(event.call)} is called without it, so "
                    "every call starts from a zero state and the carried state is thrown "
                    f"away. Pass it back in: `{callee}(..., {name})`"
                )
                yield model.finding(self.code, event.call, message)

    def _reset_inside_forward(self, model: FileModel) -> Iterator[Finding]:
        resets = model.context.forward_resets
        if not resets:
            return
        ask = queries(model)
        for unit, call in model.recurrent_calls():
            class_name = (call.module_class or "").rsplit(".", 1)[-1]
            positions = resets.get(class_name)
            if not positions or call.no_grad or not ask.is_carried(unit, call):
                continue
            for position, arg in enumerate(call.call.args):
                if arg.keyword is not None or position not in positions:
                    continue
                carried = [n for n, e in call.state_args.items() if e is arg.value]
                if not carried:
                    continue
                message = (
                    f"the loop carries `{carried[0]}` into `{call.callee}`, but "
                    f"`{class_name}.forward` re-initialises that argument, so the carried state "
                    "is thrown away on every call. Use the argument in `forward` (initialise it "
                    "only when it is None)"
                )
                yield model.finding(self.code, arg.value, message)

    def _resets_per_step(self, model: FileModel) -> Iterator[Finding]:
        for fresh in per_step_fresh_state(model, RESET):
            # Reset on every path: no pass of the loop takes the state from the one before.
            if len(fresh.origins) != len(fresh.read.origins):
                continue
            message = (
                f"`{fresh.read.name}` is re-initialised on every pass of the loop at line "
                f"{model.line(fresh.loop)} although the recurrent call at line "
                f"{model.line(fresh.read.call.call)} returns it for the next step, so no state "
                "flows between steps. Initialise it once before the loop"
            )
            yield model.finding(self.code, fresh.origins[0], message)

    def _states_never_passed_back(self, model: FileModel) -> Iterator[Finding]:
        constructions = model.context.constructions
        if not constructions:
            return  # no call is of a cell the file built
        reported: set[int] = set()
        for loop in _all_loops(model):
            # The loop's own target is taken anew each pass too (`for obs, h in replay:`
            # steps each stored state once, from where it was stored).
            taken = set(target_names(loop.target)) if isinstance(loop, cst.For) else set()
            assigned = _assigned_names(loop.body) | taken
            for call in _calls(loop.body):
                callee = dotted_name(call.func)
                built = constructions.get(callee) if callee else None
                if built is None or len(call.args) < 2 or call.args[1].keyword is not None:
                    continue
                torch_cell = built.qualified_class in CELL_MODULES
                # A one-step cell of the file: which element of its result is the new state.
                position = None if torch_cell else _cell_state_position(model, built)
                if not torch_cell and position is None:
                    continue
                state = call.args[1].value
                names = (
                    [dotted_name(e.value) for e in state.elements]
                    if isinstance(state, cst.Tuple)
                    else [dotted_name(state)]
                )
                if not names or any(n is None for n in names):
                    continue
                if any(_rebound(n, taken) for n in names if n):
                    continue
                rebound = any(_rebound(n, assigned) for n in names if n)
                if not (
                    (torch_cell and not rebound)
                    # Rebound only from itself (masked at episode ends) while the cell's new
                    # state is kept under another name that never flows back.
                    or (rebound and _only_rebound_from_itself(loop, call, names, position))
                ):
                    continue
                if id(call) in reported:
                    continue
                reported.add(id(call))
                message = (
                    f"the state passed to `{callee}` is never updated inside the loop at line "
                    f"{model.line(loop)}: the cell's new state is not passed back in, so every "
                    f"step starts from the same state. Assign the result back to "
                    f"`{', '.join(n for n in names if n)}`"
                )
                yield model.finding(self.code, call, message)


def _all_loops(model: FileModel) -> list[cst.For | cst.While]:
    """The loops of the interpreted units, and those of the kept code that no unit holds (a
    model's `forward` stepping a cell, in a file whose backward runs elsewhere)."""
    loops = cast("list[cst.For | cst.While]", model.loops())
    seen = {id(loop) for loop in loops}
    for node in descendants([model.module]):
        if isinstance(node, (cst.For, cst.While)) and id(node) not in seen:
            seen.add(id(node))
            loops.append(node)
    return loops


def _cell_state_position(model: FileModel, built: Construction) -> int | None:
    """For a class of the file whose `forward(self, x, state)` has no loop of its own and
    hands back a tuple in every return, the element of that tuple that is the new state: the
    state parameter itself (rebound in `forward`) or a tuple literal (`return h, (h, c)`).
    None for anything else (a sequence model, a layer, a class of unknown body)."""
    name = built.qualified_class.rsplit(".", 1)[-1]
    classes = [
        node
        for node in model.module.body
        if isinstance(node, cst.ClassDef) and node.name.value == name
    ]
    if len(classes) != 1:
        return None
    forwards = [
        node
        for node in classes[0].body.body
        if isinstance(node, cst.FunctionDef) and node.name.value == "forward"
    ]
    if len(forwards) != 1:
        return None
    forward = forwards[0]
    params = forward.params.params
    if len(params) < 3:
        return None
    state_param = params[2].name.value
    body = list(descendants([forward.body], stop=NESTED_SCOPES))
    if any(isinstance(node, (cst.For, cst.While)) for node in body):
        return None
    positions: set[int] = set()
    for node in body:
        if not isinstance(node, cst.Return):
            continue
        value = node.value
        if not isinstance(value, cst.Tuple):
            return None
        found = [
            index
            for index, element in enumerate(value.elements)
            if (isinstance(element.value, cst.Name) and element.value.value == state_param)
            or (isinstance(element.value, cst.Tuple) and len(element.value.elements) >= 2)
        ]
        if len(found) != 1:
            return None
        positions.add(found[0])
    return positions.pop() if len(positions) == 1 else None


def _only_rebound_from_itself(
    loop: cst.For | cst.While, call: cst.Call, names: list[str | None], position: int | None
) -> bool:
    """Whether the loop binds the cell's new state (element `position` of its result, or all
    of it for a torch cell) to names of its own and rebinds the state it passes in only from
    that state itself (`state = tuple(nd * s for s in state)`), never from the new state or
    anything made from it: every step then starts from the loop's first state."""
    statements = [
        node
        for node in descendants([loop.body], stop=NESTED_SCOPES)
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign))
    ]
    binding = [n for n in statements if isinstance(n, cst.Assign) and n.value is call]
    if len(binding) != 1 or len(binding[0].targets) != 1:
        return False
    target: cst.BaseExpression = binding[0].targets[0].target
    if position is not None:
        if not isinstance(target, cst.Tuple) or len(target.elements) <= position:
            return False
        target = target.elements[position].value
    new_names = set(target_names(target))
    passed = {n for n in names if n}
    if not new_names or "_" in new_names or new_names & passed:
        return False
    derived = set(new_names)
    changed = True
    while changed:
        changed = False
        for node in statements:
            if node is binding[0] or node.value is None:
                continue
            if names_in(node.value) & derived:
                bound = _statement_targets(node) - derived
                if bound:
                    derived |= bound
                    changed = True
    for node in statements:
        if node is binding[0] or not _overlap(_statement_targets(node), passed):
            continue
        read = names_in(node.value) if node.value is not None else set()
        if read & derived or not _overlap(read, passed):
            return False
    return True


def _overlap(names: set[str], passed: set[str]) -> bool:
    """Whether `names` holds a passed state name, or the object one is read from, or a part
    of one (`state` for `state.h`, and the other way round)."""
    return any(
        name == state or state.startswith(name + ".") or name.startswith(state + ".")
        for name in names
        for state in passed
    )


def _statement_targets(node: cst.Assign | cst.AugAssign | cst.AnnAssign) -> set[str]:
    if isinstance(node, cst.Assign):
        return {name for target in node.targets for name in target_names(target.target)}
    return set(target_names(node.target))


def _cut_but_never_stepped_calls(
    model: FileModel,
) -> Iterator[tuple[cst.Call, str, list[str], cst.CSTNode]]:
    """(call, callee, state names, a cut of them) for each torch recurrent sequence module
    called in a loop with a state that the loop only ever cuts (`hidden = tuple(h.detach()
    for h in hidden)`) and never rebinds to the module's new state (`out, _ = lstm(x,
    hidden)`). A state the loop neither cuts nor rebinds is a fixed start (`lstm(x, h0)` on
    every batch), which is no sign of a state meant to be carried."""
    constructions = model.context.constructions
    if not constructions:
        return  # no call is of a module the file built
    seen: set[int] = set()
    for loop in cast("list[cst.For | cst.While]", model.loops()):
        cuts, others = _self_cuts(loop.body)
        if not cuts:
            continue
        for call in _calls(loop.body):
            callee = dotted_name(call.func)
            built = constructions.get(callee) if callee else None
            if id(call) in seen or built is None:
                continue
            if built.qualified_class not in RECURRENT_MODULES - CELL_MODULES:
                continue
            state = _state_argument(call)
            if state is None:
                continue
            names = (
                [dotted_name(e.value) for e in state.elements]
                if isinstance(state, cst.Tuple)
                else [dotted_name(state)]
            )
            known = [n for n in names if n is not None]
            if not known or len(known) != len(names):
                continue
            if any(n not in cuts or _rebound(n, others) for n in known):
                continue
            seen.add(id(call))
            yield call, callee or "", known, cuts[known[0]]


def _state_argument(call: cst.Call) -> cst.BaseExpression | None:
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    if len(positional) == 2:
        return positional[1]
    keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
    return keywords.get("hx")


def _self_cuts(body: cst.CSTNode) -> tuple[dict[str, cst.CSTNode], set[str]]:
    """Names a loop body rebinds only to a cut of themselves (`h = h.detach()`, `hidden =
    tuple(s.detach() for s in hidden)`), each with one such cut, and every name it binds in
    any other way."""
    cuts: dict[str, cst.CSTNode] = {}
    others: set[str] = set()
    for node in descendants([body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            bound = {n for target in node.targets for n in target_names(target.target)}
            if len(bound) == 1 and handed_on(node.value) in bound and _detaches(node.value):
                cuts.setdefault(next(iter(bound)), node)
            else:
                others |= bound
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)):
            others.update(target_names(node.target))
        elif isinstance(node, (cst.AsName, cst.NamedExpr)):
            others.update(target_names(node.name if isinstance(node, cst.AsName) else node.target))
    return {n: c for n, c in cuts.items() if n not in others}, others


def _detaches(value: cst.BaseExpression) -> bool:
    return any(
        isinstance(node, cst.Call) and method_name(node) in ("detach", "detach_")
        for node in (value, *descendants([value]))
    )


def _calls(root: cst.CSTNode) -> Iterator[cst.Call]:
    for node in descendants([root], stop=(cst.FunctionDef, cst.Lambda)):
        if isinstance(node, cst.Call):
            yield node


def _rebound(name: str, assigned: set[str]) -> bool:
    """Whether the loop rebinds `name` or the object it is read from: `state = State(h, c)`
    gives `state.h` a new value as surely as `state.h = h` does."""
    parts = name.split(".")
    return any(".".join(parts[:end]) in assigned for end in range(1, len(parts) + 1))


def _assigned_names(root: cst.CSTNode) -> set[str]:
    names: set[str] = set()
    for node in descendants([root]):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                names.update(target_names(target.target))
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For)):
            names.update(target_names(node.target))
    return names


def _passed_elsewhere(unit: UnitEvents, event: StatelessCall) -> bool:
    """Whether the loop also calls the module with its state (`if i == 0: out, h = gru(x)`
    `else: out, h = gru(x, h)`): leaving it out is then the deliberate start of a sequence."""
    callee = dotted_name(event.call.func)
    return any(
        call.callee == callee and set(call.loops) & set(event.loops)
        for call in unit.recurrent_calls
    )


def _thrown_away_cut(
    model: FileModel,
    unit: UnitEvents,  # noqa: ARG001 - the shape of this rule's other unit checks
    event: StatelessCall,
) -> tuple[str, cst.CSTNode] | None:
    """The first state of the call that a loop around it cuts, where nothing reads the cut
    value before the call replaces it: the cut was only good for passing the state on."""
    for name in event.states:
        value = event.before.get(name)
        if value is None:
            continue
        for origin, how in value.all_sources():
            if how not in (CUT, LEAF):
                continue
            loops = [loop for loop in event.loops if spans_contain(model, loop, origin)]
            if loops and not _read_between(model, loops[-1], name, origin, event.call):
                return name, origin
    return None


def _read_between(
    model: FileModel, loop: cst.CSTNode, name: str, cut: cst.CSTNode, call: cst.Call
) -> bool:
    """Whether `name` is read on the way from the cut to the call inside `loop`: after the
    cut and before the call ends when the cut comes first, and otherwise after the cut to
    the end of the loop's body or from its start to the call (the next pass)."""
    cut_end = model.span(cut)[2:]
    call_start, call_end = model.span(call)[:2], model.span(call)[2:]
    targets = _target_nodes(loop)
    # A keyword's name (`net(x, h=None)`) reads nothing.
    keywords = {
        id(node.keyword)
        for node in descendants([loop.body], stop=(cst.FunctionDef, cst.Lambda))  # type: ignore[attr-defined]
        if isinstance(node, cst.Arg) and node.keyword is not None
    }
    for node in descendants([loop.body], stop=(cst.FunctionDef, cst.Lambda)):  # type: ignore[attr-defined]
        if not isinstance(node, (cst.Name, cst.Attribute)) or dotted_name(node) != name:
            continue
        if id(node) in targets or id(node) in keywords or spans_contain(model, cut, node):
            continue
        at = model.span(node)[:2]
        if call_start <= at <= call_end:
            return True  # read by the call itself: `gru(torch.cat([x, h]))`
        if cut_end < call_start and cut_end < at < call_start:
            return True
        if cut_end > call_end and (at > cut_end or at < call_start):
            return True
    return False


def _target_nodes(root: cst.CSTNode) -> set[int]:
    """The nodes an assignment binds (not reads) under `root`."""
    bound: set[int] = set()
    for node in descendants([root]):
        targets: list[cst.BaseExpression] = []
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
        elif isinstance(node, (cst.AnnAssign, cst.For)):
            targets = [node.target]
        for target in targets:
            bound.update(
                id(part)
                for part in descendants([target])
                if isinstance(part, (cst.Name, cst.Attribute))
            )
    return bound


def attribute_reset_inside_forward(model: FileModel, code: str) -> Iterator[Finding]:
    """`forward` re-initialises the state it keeps on the module on every call
    (`self.hidden = self.init_hidden(bs)`, `self.init_state(...)`), while the loop cuts and
    carries that state (`model.hidden = repackage(model.hidden)`, `model.detach_state()`)."""
    classes = model.context.stateful_classes
    reported: set[int] = set()
    for unit, call in model.recurrent_calls():
        attributes = classes.get(call.module_class or "") if call.module_class else None
        if not attributes or call.no_grad:
            continue
        for attribute, how in attributes.items():
            if how != RESET:
                continue
            state = f"{call.callee}.{attribute}"
            scope = call.loops[0] if call.loops else unit.unit
            for node in _carrying_statements(model, scope, call.module_class or "", state):
                if id(node) in reported:
                    continue
                reported.add(id(node))
                message = (
                    f"the loop cuts and carries `{state}`, but `{call.module_class}.forward` "
                    f"re-initialises `self.{attribute}` on every call, so the carried state is "
                    "thrown away. Initialise it in `forward` only when it is None (or when the "
                    "batch size changes)"
                )
                yield model.finding(code, node, message)


def _carrying_statements(
    model: FileModel, scope: cst.CSTNode, class_name: str, state: str
) -> Iterator[cst.CSTNode]:
    """Where the loop keeps `state` going: an assignment to it that reads it
    (`model.hidden = repackage(model.hidden)`), or a call of a method of the class that cuts
    it (`model.detach_hidden()`)."""
    instance, _, attribute = state.rpartition(".")
    methods = model.context.state_methods.get(class_name, {})
    for node in descendants([scope], stop=(cst.FunctionDef, cst.Lambda)):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                if dotted_name(target.target) == state and state in names_in(node.value):
                    yield target.target
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if dotted_name(node.func.value) != instance:
                continue
            if methods.get(node.func.attr.value, {}).get(attribute) in (CUT, LEAF):
                yield node


def attribute_reset_every_step(model: FileModel, code: str) -> Iterator[Finding]:
    """`for t in ...: self.init_states(bs); self.h = self.cell(x[t], self.h)`: a method that
    sets the state anew runs on every pass before the call that carries it."""
    if not model.context.may_reset_per_step:
        return
    for found in per_step_attribute_resets(model.module):
        message = (
            f"`self.{found.method}()` re-initialises `self.{found.attribute}` on every pass of "
            f"the loop at line {model.line(found.loop)}, right before the call at line "
            f"{model.line(found.carry)} reads it and stores its new value back, so no state "
            "flows between steps. Initialise it once, before the loop"
        )
        yield model.finding(code, found.reset, message)


def fetched_state_left_out(model: FileModel, code: str) -> Iterator[Finding]:
    """`mems = history[i]` and then `model(seg)` without it: the state each step should start
    from is fetched from the list of the states the steps return, and never passed in."""
    if not model.context.may_drop_fetched_state:
        return
    for unit in model.units:
        owner = model.context.class_defs.get(unit.class_name or "")
        for found in dropped_states(unit.unit, owner):
            callee = model.code(found.call.func)
            message = (
                f"`{found.name}` is taken at line {model.line(found.fetch)} from "
                f"`{found.history}`, where the states `{callee}` returns are kept, but "
                f"`{callee}` at line {model.line(found.call)} is called without it and nothing "
                "reads it, so every step starts from the model's initial state. Pass it in"
            )
            yield model.finding(code, found.call, message)


def cell_stepped_without_state(model: FileModel, code: str) -> Iterator[Finding]:
    """A model's `forward` calls its one-step cell without the state, and a loop steps the
    model over a sequence with one backward after it: every step starts from zeros."""
    if not model.context.may_leave_cell_state_out:
        return
    for found in stateless_cell_steps(model):
        callee = model.code(found.call.func)
        message = (
            f"`{callee}` steps its state once per call, but `{found.model_class}.forward` calls "
            f"it without `{found.state}`, so it starts from zeros on every call while the loop "
            f"at line {model.line(found.loop)} runs the model over a sequence and "
            "back-propagates once after it: no state flows between steps. Take the state as "
            f"an argument of `forward`, return the new one, and pass it back in"
        )
        yield model.finding(code, found.call, message)
