"""TBP012 optimizer-step-misplaced: `zero_grad()` and `step()` sit at different loop levels."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.events import UnitEvents
from tbptt_lint.analysis.gradients import (
    BACKWARD,
    CALL,
    CLEAR,
    MAY_CLEAR,
    STEP,
    GradientEvent,
    GradientFlow,
    is_torch_optimizer,
    prefixes,
    reaches,
    unit_flow,
)
from tbptt_lint.analysis.loaders import (
    MAX_OPTIMIZER_SOURCE_CHARACTERS,
    file_loaders,
    given_optimizer,
)
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class OptimizerStepMisplaced(Rule):
    """`zero_grad()` and `step()` sit at different loop levels, so gradients are lost or never
    cleared.

    With `zero_grad()` inside the window loop and `step()` after it, each window wipes the
    gradient of the one before, and the single update uses only the last window. With
    `step()` inside the loop and no `zero_grad()` in it, gradients pile up across all
    windows or batches and every update applies the sum of all of them. Accumulate-then-step
    (one `zero_grad()` before the loop, one `step()` after it) is correct.
    """

    code = "TBP012"

    INVALID = (
        """
hidden = model.init_hidden(8)
for i in range(0, 100, 10):
    optimizer.zero_grad()
    hidden = hidden.detach()
    out, hidden = model(x[i:i + 10], hidden)
    criterion(out, y[i:i + 10]).backward()
optimizer.step()
""",
    )
    VALID = (
        """
hidden = model.init_hidden(8)
optimizer.zero_grad()
for i in range(0, 100, 10):
    hidden = hidden.detach()
    out, hidden = model(x[i:i + 10], hidden)
    criterion(out, y[i:i + 10]).backward()
optimizer.step()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        helpers_step = any(facts.grad_steps for facts in model.context.functions.values())
        bindings = Bindings(model.module)
        checked: set[int] = set()
        for unit in model.units:
            checked.add(id(unit.unit))
            if not helpers_step and not any(c.method == "step" for c in unit.optimizer_calls):
                continue  # nothing steps an optimizer here
            flow = unit_flow(_body(unit.unit), model.context, unit.class_name)
            _add_interpreted_backwards(flow, unit)
            yield from self._check_flow(model, flow, bindings, unit.unit)
        for node, class_name in model.gradient_units:
            checked.add(id(node))
            flow = unit_flow(_body(node), model.context, class_name)
            yield from self._check_flow(model, flow, bindings, node)
        # A method run once per batch (SpeechBrain's `fit_batch`) that steps only every k-th
        # call: no unit, for it has no loop of its own.
        for function, class_name in _periodic_steppers(model, checked):
            flow = unit_flow(_body(function), model.context, class_name)
            if flow.of(STEP):
                optimizers = Optimizers(model, flow, bindings, function)
                for node, message in _cleared_between_periodic_steps(
                    model, flow, optimizers, function
                ):
                    yield model.finding(self.code, node, message)

    def _check_flow(
        self, model: FileModel, flow: GradientFlow, bindings: Bindings, unit: cst.CSTNode
    ) -> Iterator[Finding]:
        if not flow.of(STEP):
            return
        optimizers = Optimizers(model, flow, bindings, unit)
        reported: set[int] = set()
        for node, message in [
            *_cleared_inside(model, flow, optimizers),
            *_never_cleared(model, flow, optimizers),
            *_cleared_between_periodic_steps(model, flow, optimizers, unit),
            *_cleared_before_step(model, flow, optimizers),
        ]:
            if id(node) not in reported:
                reported.add(id(node))
                yield model.finding(self.code, node, message)


def _parameters(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _body(unit: cst.CSTNode) -> list[cst.CSTNode]:
    if isinstance(unit, cst.Module):
        return list(unit.body)
    return list(unit.body.body)  # type: ignore[attr-defined]


def _add_interpreted_backwards(flow: GradientFlow, unit: UnitEvents) -> None:
    """The interpreter's backward sites are backwards here too (they agree, but a helper the
    interpreter resolved must not be missed)."""
    seen = {id(e.node) for e in flow.events if e.kind == BACKWARD}
    calls = {id(e.node): e for e in flow.events}
    for site in unit.backwards:
        event = calls.get(id(site.call))
        if event is not None and id(site.call) not in seen:
            flow.events.append(GradientEvent(BACKWARD, site.call, None, event.loops, event.order))


class Optimizers:
    """What the steps of one unit act on, and which objects could clear their gradients."""

    def __init__(
        self, model: FileModel, flow: GradientFlow, bindings: Bindings, unit: cst.CSTNode
    ) -> None:
        self.model = model
        self.unit = unit
        self.bindings = bindings
        self.context: FileContext = model.context
        self.steps = flow.of(STEP)
        self.stepped = {e.receiver for e in self.steps if e.receiver}
        self.cleared = {e.receiver for e in flow.of(CLEAR) if e.receiver and e.via is None}
        self.clears = flow.of(CLEAR)
        self._torch: dict[str, bool] = {}
        self._objects: set[str] | None = None
        self._passed_in: set[str] = set()

    def torch(self, receiver: str | None) -> bool:
        """Whether `receiver` is a torch.optim optimizer, or a wrapper of one, that the unit
        steps, and is bound to nothing else in the file."""
        if receiver is None:
            return False
        known = self._torch.get(receiver)
        if known is None:
            flagged = any(e.torch for e in self.steps if e.receiver == receiver)
            known = (
                flagged or self.is_torch(receiver) or self.given_torch(receiver)
            ) and not self.rebound(receiver)
            self._torch[receiver] = known
        return known

    def given_torch(self, receiver: str) -> bool:
        """A parameter of the unit's function that every call of it in the run gives a torch
        optimizer (`executor.train(model, optimizer, loader)` after `optimizer =
        optim.Adam(...)` in another file)."""
        unit = self.unit
        if "." in receiver or not isinstance(unit, cst.FunctionDef):
            return False
        if len(self.context.source) > MAX_OPTIMIZER_SOURCE_CHARACTERS:
            return False  # not parsed again for this: a generated file, a test suite
        if not any(p.name.value == receiver for p in _parameters(unit)):
            return False
        given = given_optimizer(
            file_loaders(self.model), self.context.index, self.model.line(unit.name), receiver
        )
        if given:
            self._passed_in.add(receiver)
        return given

    @property
    def objects(self) -> set[str]:
        """The objects whose unknown methods, or calls they are passed to, may clear
        gradients: the optimizers, the modules they update, and what holds them (`self`,
        `trainer`)."""
        if self._objects is None:
            models = {root for r in self.stepped for root in self.parameter_sources(r)}
            models |= {e.receiver for e in self.clears if e.receiver not in self.stepped}  # type: ignore[misc]
            if any(self.torch(r) and r in self._passed_in for r in self.stepped):
                # The model it updates is not known here: any parameter, or `self`, may hold it.
                models |= {p.name.value for p in _parameters(self.unit)}  # type: ignore[arg-type]
            objects = {name for name in self.stepped | models if name}
            self._objects = objects | {p for name in objects for p in prefixes(name)}
        return self._objects

    def is_torch(self, receiver: str) -> bool:
        """A torch.optim optimizer, or an object of a class of the run whose `step()` steps
        one (a wrapper given a torch optimizer when it is built)."""
        if is_torch_optimizer(self.context, receiver):
            return True
        built = self.context.construction_of(receiver)
        if built is None:
            return False
        owner = built.qualified_class.rsplit(".", 1)[-1]
        facts = self.context.functions.get(f"{owner}.step")
        if facts is None or not facts.grad_steps:
            return False
        if any(torch for _, torch in facts.grad_steps):
            return True
        return any(self.builds_torch_optimizer(arg.value) for arg in built.call.args)

    def builds_torch_optimizer(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.Call):
            qualified = self.context.qualify(node.func) or ""
            return qualified.startswith("torch.optim.") and "lr_scheduler" not in qualified
        return is_torch_optimizer(self.context, dotted_name(node))

    def rebound(self, receiver: str) -> bool:
        """Whether the name is also bound to something else in the file
        (`model, optimizer = amp.initialize(model, optimizer)`): then it may not be the torch
        optimizer it was built as. A binding the unit's steps cannot see does not count: one
        after every loop that steps it, in no loop around them (`epoch, model, optimizer =
        load_checkpoint(...)` under `elif mode == "eval":` once training is over)."""
        built = self.context.construction_of(receiver)
        steps = [e for e in self.steps if e.receiver == receiver]
        return any(
            value is not (built.call if built is not None else None)
            and not self.after_every_step(value, steps)
            for value in self.bindings.of(receiver)
        )

    def after_every_step(self, value: cst.CSTNode | None, steps: list[GradientEvent]) -> bool:
        """Whether a bound value is made only after all of the unit's `steps` are done: below
        the loops around each, and inside none of them. (Unknown places count as before.)"""
        if value is None or not steps or any(not step.loops for step in steps):
            return False
        if not any(node is value for node in descendants([self.unit])):
            return False  # outside the unit: where it runs cannot be told here
        line = self.model.line(value)
        for step in steps:
            outermost = step.loops[0]
            if line <= self.model.span(outermost)[2]:
                return False  # before the loop ends: inside it, or above it
        return True

    def built_in(self, receiver: str | None, loop: cst.CSTNode) -> bool:
        built = self.context.construction_of(receiver)
        return built is not None and any(node is built.call for node in descendants([loop]))

    def parameter_sources(self, receiver: str) -> set[str]:
        """`model` for an optimizer built from `model.parameters()`."""
        built = self.context.construction_of(receiver)
        if built is None:
            return set()
        sources = set()
        for node in descendants(list(built.call.args)):
            if (
                isinstance(node, cst.Call)
                and isinstance(node.func, cst.Attribute)
                and node.func.attr.value in ("parameters", "named_parameters")
            ):
                name = dotted_name(node.func.value)
                if name is not None:
                    sources.add(name)
        return sources

    def known(self, receiver: str | None) -> bool:
        """An object known to be an optimizer: a torch one, a wrapper of one, or one the unit
        clears with `zero_grad()`."""
        return receiver is not None and (
            receiver in self.cleared or self.torch(receiver) or self.accelerated(receiver)
        )

    def accelerated(self, receiver: str) -> bool:
        """An optimizer stepped inside `accelerator.accumulate(...)` and named as one
        (`self.optimizer`, `optim`): accelerate wraps what it prepares, and the wrapper's
        `step()` runs only at the accumulation boundary. A scheduler is not one."""
        last = receiver.rsplit(".", 1)[-1].lower()
        return (
            "optim" in last
            and "sched" not in last
            and any(e.receiver == receiver and e.accumulate is not None for e in self.steps)
        )

    def gated(self, event: GradientEvent) -> set[tuple[int, bool]]:
        """The guards of an event, with the `accelerator.accumulate(...)` around it as one
        more for a step or a `zero_grad()` of an optimizer: those run only at the boundary.
        A module's `zero_grad()` (`self.policy.zero_grad()`) is not wrapped: every pass."""
        keys = _guard_keys(event)
        if event.accumulate is None or event.receiver is None:
            return keys
        if event.kind not in (STEP, CLEAR) or event.receiver not in self.stepped:
            return keys
        if self.accelerated(event.receiver) and not self.torch(event.receiver):
            # (a torch optimizer that `prepare` never wrapped steps on every pass)
            keys.add((id(event.accumulate), True))
        return keys

    def may_clear(self, event: GradientEvent) -> bool:
        return event.kind in (CLEAR, MAY_CLEAR) or (
            event.kind == CALL
            and not self.calls_updated_module(event)
            and reaches(event, self.objects, self.objects)
        )

    def calls_updated_module(self, event: GradientEvent) -> bool:
        """`D.net(x)` where an optimizer was built from `D.net.parameters()`: calling the module
        runs its forward, which clears no gradients, as `model(x)` does not."""
        if event.via is not None or not event.receiver or not event.method:
            return False
        callee = f"{event.receiver}.{event.method}"
        return any(callee in self.parameter_sources(r) for r in self.stepped if self.torch(r))

    def clears_another(self, clear: GradientEvent, step: GradientEvent) -> bool:
        """`optimizer_E.zero_grad()` beside `optimizer_D.step()`: a clear of another torch
        optimizer, both built from the `parameters()` of modules that are not one another's
        (a GAN's encoder and discriminator). Its clear leaves the stepped one's gradients as
        they are. Optimizers over one module, or over parameters not named where they are
        built (`Adam(params)`), may share them: not another's."""
        if clear.kind != CLEAR or clear.via is not None or not clear.receiver:
            return False
        if clear.receiver == step.receiver or not step.receiver:
            return False
        if not (self.torch(clear.receiver) and self.torch(step.receiver)):
            return False
        cleared = self.parameter_sources(clear.receiver)
        stepped = self.parameter_sources(step.receiver)
        if not cleared or not stepped or not self.names_only_parameters(clear.receiver):
            return False
        if not self.names_only_parameters(step.receiver):
            return False
        return not any(
            a == b or a.startswith(f"{b}.") or b.startswith(f"{a}.")
            for a in cleared
            for b in stepped
        )

    def names_only_parameters(self, receiver: str) -> bool:
        """Whether the optimizer's parameters argument is made of `m.parameters()` calls alone
        (`list(a.parameters()) + list(b.parameters())`), with no other name in it that could
        hold more parameters."""
        built = self.context.construction_of(receiver)
        if built is None:
            return False
        positional = [a for a in built.call.args if a.keyword is None]
        keyed = [
            a for a in built.call.args if a.keyword is not None and a.keyword.value == "params"
        ]
        params = (positional or keyed)[:1]
        if not params:
            return False
        allowed = {"list", "tuple", "chain", "itertools.chain"}
        for node in descendants([params[0].value]):
            if isinstance(node, cst.Call):
                if isinstance(node.func, cst.Attribute) and node.func.attr.value == "parameters":
                    continue
                if dotted_name(node.func) in allowed:
                    continue
                return False
            if isinstance(node, (cst.Name, cst.Attribute)) and not _in_parameters_call(
                node, params[0].value
            ):
                return False
        return True

    def pairs(self, clear: GradientEvent, step: GradientEvent) -> bool:
        """Whether a clear clears what a step applies: the same optimizer, or a model's
        `zero_grad()` and the one optimizer of the unit."""
        if not self.known(step.receiver):
            return False
        if clear.receiver == step.receiver:
            return True
        if clear.receiver in self.stepped or self.torch(clear.receiver):
            return False  # another optimizer (a GAN's discriminator)
        optimizers = {r for r in self.stepped if self.known(r)}
        if optimizers != {step.receiver}:
            return False
        # The model the optimizer was built from, or one holding it (`self.model` holds
        # `self.model.encoder`).
        sources = self.parameter_sources(step.receiver or "")
        return not sources or any(
            source == clear.receiver
            or source.startswith(f"{clear.receiver}.")
            or source == self.stored_as(clear.receiver, step.receiver)
            for source in sources
        )

    def stored_as(self, receiver: str | None, optimizer: str | None) -> str | None:
        """`policy` for `self.policy` when the file binds `self.policy` once, to the plain
        name `policy`, in the function that builds the optimizer (`self.policy = policy`
        beside `Adam(policy.parameters())` in `__init__`): the module the optimizer was
        built from, under the attribute's name."""
        if receiver is None or not receiver.startswith("self."):
            return None
        values = self.bindings.of(receiver)
        built = self.context.construction_of(optimizer)
        if built is None or len(values) != 1 or not isinstance(values[0], cst.Name):
            return None
        value = values[0]
        for function in descendants([self.model.module]):
            if not isinstance(function, cst.FunctionDef):
                continue
            inside = {id(node) for node in descendants([function.body])}
            if id(value) in inside:
                return value.value if id(built.call) in inside else None
        return None


class Bindings:
    """Every name the file binds -> the values bound to it (None for a loop or `with`
    target, an augmented assignment), read once per file and only when asked."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._found: dict[str, list[cst.CSTNode | None]] | None = None

    def of(self, name: str) -> list[cst.CSTNode | None]:
        if self._found is None:
            self._found = {}
            for node in descendants([self.module]):
                for target, value in _targets(node):
                    for bound in _bound_names(target):
                        self._found.setdefault(bound, []).append(value)
        return self._found.get(name, [])


def _targets(node: cst.CSTNode) -> list[tuple[cst.BaseExpression, cst.CSTNode | None]]:
    if isinstance(node, cst.Assign):
        return [(t.target, node.value) for t in node.targets]
    if isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)):
        return [(node.target, None)]
    if isinstance(node, cst.AsName) and isinstance(node.name, cst.BaseExpression):
        return [(node.name, None)]
    return []


def _bound_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _bound_names(e.value)}
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    name = dotted_name(target)
    return {name} if name else set()


def _describe(model: FileModel, event: GradientEvent, what: str) -> str:
    """`optimizer.step()`, or `self.update()` (which calls `step()`) for a helper's."""
    call = event.node
    text = model.code(call.func) if isinstance(call, cst.Call) else model.code(call).strip()
    if event.via is None:
        return f"`{text}()`"
    return f"`{text}()` (which calls `{what}()`)"


def _cleared_inside(
    model: FileModel, flow: GradientFlow, optimizers: Optimizers
) -> Iterator[tuple[cst.CSTNode, str]]:
    """`zero_grad()` on every pass of a loop that back-propagates, and `step()` once after it:
    only the last pass's gradient is applied."""
    for clear in flow.of(CLEAR):
        if clear.receiver is None or not clear.loops or clear.conditional:
            continue
        loop = clear.loops[-1]
        if loop in flow.breaks or loop in flow.grad_reads:
            continue  # it may run once, or it uses each pass's gradient itself
        inside = flow.inside(loop)
        if not any(e.kind == BACKWARD and e.order > clear.order for e in inside):
            continue
        if any(e.kind == STEP or (optimizers.may_clear(e) and e.kind != CLEAR) for e in inside):
            continue  # a step in the loop, or a call that may take one
        _start, end = flow.spans[loop]
        enclosing = set(flow.parents[loop])
        for step in flow.of(STEP):
            if step.order <= end or not set(step.loops) <= enclosing:
                continue
            if not optimizers.pairs(clear, step):
                continue
            between = [e for e in flow.events if end < e.order < step.order]
            if any(e.kind in (CLEAR, MAY_CLEAR) for e in between):
                break
            yield (
                clear.node,
                (
                    f"{_describe(model, clear, 'zero_grad')} runs on every pass of the loop at "
                    f"line {model.line(loop)}, but {_describe(model, step, 'step')} runs once "
                    f"after it (line {model.line(step.node)}): each pass wipes the gradient of the "
                    "one before, so the update uses only the last pass's. Move `zero_grad()` "
                    "before the loop, or `step()` into it"
                ),
            )
            break


def _never_cleared(
    model: FileModel, flow: GradientFlow, optimizers: Optimizers
) -> Iterator[tuple[cst.CSTNode, str]]:
    """`step()` of a torch optimizer on every pass of a loop that back-propagates, with
    nothing in the loop that clears: each update applies the sum of all earlier gradients."""
    for step in flow.of(STEP):
        if not step.loops:
            continue
        loop = step.loops[-1]
        inside = flow.inside(loop)
        if not any(e.kind == BACKWARD for e in inside):
            continue  # not a training loop: the step is its only business
        others = [e for e in inside if optimizers.clears_another(e, step)]
        if any(optimizers.may_clear(e) for e in inside if e not in others):
            continue
        if not optimizers.torch(step.receiver) or optimizers.built_in(step.receiver, loop):
            continue  # not torch's, or a new optimizer on every pass: a probe
        outside = [e for e in flow.of(CLEAR) if loop not in e.loops and e not in others]
        if others:
            where = (
                f"only {_describe(model, others[0], 'zero_grad')}, another optimizer's over "
                "other parameters, clears gradients in it"
            )
        elif outside:
            where = (
                f"{_describe(model, outside[0], 'zero_grad')} runs only outside it (line "
                f"{model.line(outside[0].node)})"
            )
        else:
            where = "gradients are never cleared"
        yield (
            step.node,
            (
                f"{_describe(model, step, 'step')} runs on every pass of the loop at line "
                f"{model.line(loop)} but {where}, so each update applies the sum of all earlier "
                "windows' or batches' gradients. Call `zero_grad()` in the loop, before each "
                "backward"
            ),
        )


def _cleared_before_step(
    model: FileModel, flow: GradientFlow, optimizers: Optimizers
) -> Iterator[tuple[cst.CSTNode, str]]:
    """`loss.backward()`, then `zero_grad()`, then `step()` in the same pass: the step applies
    gradients the clear has just wiped (zeros, or none at all with `set_to_none=True`), so
    the parameters never learn from the backward. A clear after the step (accumulation), or a
    backward between the clear and the step, is the normal order."""
    for step in flow.of(STEP):
        if step.conditional and not step.guards:
            continue
        for clear in flow.of(CLEAR):
            if clear.receiver is None or clear.order >= step.order or clear.loops != step.loops:
                continue
            if clear.conditional and not clear.guards:
                continue  # in an `except:` or a conditional expression
            if not _guard_keys(clear) <= _guard_keys(step) or not optimizers.pairs(clear, step):
                continue  # a step that may run without the clear before it
            between = [e for e in flow.events if clear.order < e.order < step.order]
            if any(e.kind in (BACKWARD, MAY_CLEAR, CALL) for e in between):
                continue  # a backward (or a call that may run one) refills the gradients
            backward = next(
                (
                    e
                    for e in reversed(flow.of(BACKWARD))
                    if e.order < clear.order
                    and e.loops[: len(step.loops)] == step.loops
                    and _guard_keys(e) <= _guard_keys(clear)
                ),
                None,
            )
            if backward is None:
                continue
            if any(backward.order <= order < step.order for order in flow.grad_read_orders):
                continue  # the gradient is read (kept aside, or put back) before the step
            yield (
                clear.node,
                (
                    f"{_describe(model, clear, 'zero_grad')} runs after the backward at line "
                    f"{model.line(backward.node)} and before {_describe(model, step, 'step')} "
                    f"(line {model.line(step.node)}): it wipes the gradients the backward just "
                    "computed, so the step applies none of them and the parameters never "
                    "learn. Clear the gradients before the backward, or after the step"
                ),
            )
            break


# `step % k == 0`, `(i + 1) % accum != 0`, `not i % k`: a test that holds on every k-th pass.
PERIODIC_TEXT = re.compile(r"%[^\n]*[=!]=\s*0\b|\bnot\b[^\n]*%")


def _periodic_steppers(
    model: FileModel, checked: set[int]
) -> Iterator[tuple[cst.FunctionDef, str | None]]:
    """Functions and methods that no unit covers, in a file that clears gradients and tests a
    counter modulo something: where a step every k-th call may sit."""
    source = model.context.source or ""
    if "zero_grad" not in source or not PERIODIC_TEXT.search(source):
        return
    stack: list[tuple[cst.CSTNode, str | None]] = [(model.module, None)]
    while stack:
        node, class_name = stack.pop()
        if isinstance(node, cst.FunctionDef):
            if id(node) not in checked:
                yield node, class_name
            continue  # a function nested in a function runs when that one says
        if isinstance(node, cst.ClassDef):
            stack.extend((child, node.name.value) for child in node.body.body)
        elif isinstance(node, cst.Module):
            stack.extend((child, None) for child in node.body)
        elif isinstance(node, (cst.If, cst.Try)):
            stack.extend((child, class_name) for child in descendants_of_blocks(node))


def descendants_of_blocks(node: cst.If | cst.Try) -> list[cst.CSTNode]:
    """The statements of an `if` or `try` at module or class level (guarded definitions)."""
    blocks = [node.body]
    if isinstance(node, cst.If) and node.orelse is not None:
        blocks.append(node.orelse.body if isinstance(node.orelse, cst.Else) else node.orelse)  # type: ignore[arg-type]
    found: list[cst.CSTNode] = []
    for block in blocks:
        if isinstance(block, cst.If):
            found.append(block)
        elif isinstance(block, cst.IndentedBlock):
            found.extend(block.body)
    return found


def _cleared_between_periodic_steps(
    model: FileModel, flow: GradientFlow, optimizers: Optimizers, unit: cst.CSTNode
) -> Iterator[tuple[cst.CSTNode, str]]:
    """`zero_grad()` on every pass (before the backward, or after the step outside its
    condition) while `step()` runs only when a counter modulo k is 0: the gradients of the
    passes that do not step are wiped before any step uses them, so gradient accumulation
    applies only the last pass's gradient."""
    bound: dict[str, list[cst.BaseExpression]] | None = None
    for step in flow.of(STEP):
        accumulated = optimizers.gated(step) - _guard_keys(step)
        if not step.guards and not accumulated:
            continue
        if bound is None:
            bound = _bound_in(unit)
        periodic = {
            (id(test), taken) for test, taken in step.guards if _periodic(test, taken, bound)
        } | accumulated
        if not periodic:
            continue
        if {r for r in optimizers.stepped if optimizers.known(r)} != {step.receiver}:
            continue  # several optimizers take turns (a GAN's every other batch)
        for backward in flow.of(BACKWARD):
            if backward.order >= step.order or backward.loops != step.loops:
                continue
            if _guard_keys(backward) & periodic:
                continue  # back-propagates only when it steps
            if _exclusive(backward, step):
                continue  # on the other branch of an `if`: never in the same pass
            if any(backward.order <= order < step.order for order in flow.grad_read_orders):
                continue  # each pass's gradient is read (kept aside) before the clear
            if _stepped_every_pass(flow, optimizers, backward, periodic):
                continue
            clear = _clear_every_pass(flow, optimizers, backward, step, periodic)
            if clear is None:
                continue
            test = next((t for t, taken in step.guards if (id(t), taken) in periodic), None)
            if test is not None:
                when = f"only when `{model.code(test).strip()}`"
            else:
                gate = model.code(step.accumulate).strip() if step.accumulate else "accumulate"
                when = (
                    f"only at the accumulation boundary of `{gate}` (accelerate skips the "
                    "prepared optimizer's `step()` and `zero_grad()` in between, not a "
                    "module's `zero_grad()`)"
                )
            yield (
                clear.node,
                (
                    f"{_describe(model, clear, 'zero_grad')} runs on every pass, but "
                    f"{_describe(model, step, 'step')} {when} "
                    f"(line {model.line(step.node)}): each pass wipes the gradients the passes "
                    "before it accumulated, so every update applies only the last pass's. "
                    "Clear the gradients right after the step, under the same condition"
                ),
            )
            return


def _exclusive(first: GradientEvent, second: GradientEvent) -> bool:
    """Whether the two sit on opposite branches of the same `if`."""
    return any((id(test), not taken) in _guard_keys(second) for test, taken in first.guards)


def _guard_keys(event: GradientEvent) -> set[tuple[int, bool]]:
    return {(id(test), taken) for test, taken in event.guards}


def _stepped_every_pass(
    flow: GradientFlow,
    optimizers: Optimizers,
    backward: GradientEvent,
    periodic: set[tuple[int, bool]],
) -> bool:
    """A step after the backward that runs whenever the backward does."""
    needed = _guard_keys(backward)
    return any(
        e.kind == STEP
        and e.order > backward.order
        and e.loops == backward.loops
        and not optimizers.gated(e) & periodic
        and optimizers.gated(e) <= needed
        and not (e.conditional and not e.guards)
        for e in flow.events
    )


def _clear_every_pass(
    flow: GradientFlow,
    optimizers: Optimizers,
    backward: GradientEvent,
    step: GradientEvent,
    periodic: set[tuple[int, bool]],
) -> GradientEvent | None:
    """A `zero_grad()` of the stepped optimizer that runs whenever the backward does, in the
    same loop: before the backward, or after the step."""
    needed = _guard_keys(backward)
    for clear in flow.of(CLEAR):
        if clear.receiver is None or clear.loops != backward.loops:
            continue
        if not (clear.order < backward.order or clear.order > step.order):
            continue
        keys = optimizers.gated(clear)
        if keys & periodic or not keys <= needed:
            continue
        if clear.conditional and not clear.guards:
            continue  # in an `except:` or a conditional expression
        if optimizers.pairs(clear, step):
            return clear
    return None


def _bound_in(unit: cst.CSTNode) -> dict[str, list[cst.BaseExpression]]:
    """Names bound by plain assignment in the unit -> the values bound to them."""
    found: dict[str, list[cst.BaseExpression]] = {}
    for node in descendants([unit]):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                name = dotted_name(target.target)
                if name is not None:
                    found.setdefault(name, []).append(node.value)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            name = dotted_name(node.target)
            if name is not None:
                found.setdefault(name, []).append(node.target)  # not one value: unknown
    return found


def _periodic(
    test: cst.BaseExpression, taken: bool, bound: dict[str, list[cst.BaseExpression]]
) -> bool:
    """Whether the branch `taken` of `test` runs only on every k-th pass: `n % k == 0`,
    `n % k != 0` on its else branch, `not n % k`, one of several conditions joined by
    `and`/`or`, or a local name bound once to such a test (`should_step = ...`)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return _periodic(test.expression, not taken, bound)
    if isinstance(test, cst.BooleanOperation):
        return taken and (_periodic(test.left, True, bound) or _periodic(test.right, True, bound))
    if _is_modulo(test):
        return not taken  # `if n % k:` holds on every pass but the k-th
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        sides = (test.left, target.comparator)
        if not any(_is_zero(side) for side in sides) or not any(_is_modulo(s) for s in sides):
            return False
        if isinstance(target.operator, cst.Equal):
            return taken
        return isinstance(target.operator, cst.NotEqual) and not taken
    name = dotted_name(test)
    values = bound.get(name, []) if name is not None else []
    return len(values) == 1 and values[0] is not test and _periodic(values[0], taken, {})


def _is_modulo(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo)


def _is_zero(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Integer) and node.value == "0"


def _in_parameters_call(node: cst.CSTNode, root: cst.CSTNode) -> bool:
    """Whether a name is the callee of, or the object of, a `.parameters()` call under `root`
    (`a` and `a.parameters` in `a.parameters()`), or a container builder (`list`)."""
    for call in descendants([root]):
        if not isinstance(call, cst.Call):
            continue
        if call.func is node or node in set(descendants([call.func])):
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "parameters":
                return True
            if dotted_name(call.func) in ("list", "tuple", "chain", "itertools.chain"):
                return True
    return False
