"""What code does to gradients, for TBP012: backward passes, optimizer steps and gradient
clears, each with the loops around it and its place in the order the code runs.

Calls are followed into the functions and methods of the run that the summaries describe (a
loss helper whose `__call__` runs `loss.backward()`, a trainer method that steps and clears,
a wrapper optimizer whose `step()` steps the torch optimizer it holds). A call the analysis
cannot see into is kept as a CALL event with the names it touches: whether it may clear
gradients depends on whether it can reach the optimizer or the model, which only the caller
knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.events import Loops
from tbptt_lint.analysis.index import FunctionFacts
from tbptt_lint.analysis.interpreter import NOT_RECURRENT_BUILTINS
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import children, descendants

BACKWARD = "backward"
STEP = "step"
CLEAR = "clear"
MAY_CLEAR = "may_clear"  # clears on some path the analysis does not follow
CALL = "call"  # a call the analysis cannot see into

BACKWARD_METHODS = frozenset({"backward", "manual_backward"})
# In-place methods on a `.grad` that do not clear it.
GRAD_KEEPING_METHODS = frozenset({"detach_", "requires_grad_"})
# Methods of modules, optimizers, tensors and containers that never clear gradients.
HARMLESS_METHODS = frozenset(
    {
        # nn.Module and torch.optim.Optimizer
        "train",
        "eval",
        "parameters",
        "named_parameters",
        "buffers",
        "named_buffers",
        "children",
        "named_children",
        "modules",
        "named_modules",
        "state_dict",
        "load_state_dict",
        "forward",
        "register_buffer",
        "register_parameter",
        "add_param_group",
        # tensors
        "to",
        "cuda",
        "cpu",
        "float",
        "double",
        "half",
        "bfloat16",
        "long",
        "int",
        "bool",
        "type",
        "type_as",
        "item",
        "tolist",
        "numpy",
        "size",
        "dim",
        "numel",
        "view",
        "view_as",
        "reshape",
        "contiguous",
        "transpose",
        "permute",
        "squeeze",
        "unsqueeze",
        "flatten",
        "expand",
        "expand_as",
        "repeat",
        "split",
        "chunk",
        "narrow",
        "t",
        "detach",
        "clone",
        "sum",
        "mean",
        "max",
        "min",
        "argmax",
        "argmin",
        "norm",
        "exp",
        "log",
        "pow",
        "sqrt",
        "abs",
        "softmax",
        "log_softmax",
        "eq",
        "ne",
        "gt",
        "lt",
        "masked_fill",
        "index_select",
        "gather",
        "add",
        "sub",
        "mul",
        "div",
        "matmul",
        "mm",
        "bmm",
        "new_zeros",
        "new_ones",
        "new_full",
        "new_tensor",
        # containers, strings, files, loggers
        "append",
        "extend",
        "insert",
        "pop",
        "items",
        "keys",
        "values",
        "get",
        "format",
        "join",
        "write",
        "flush",
        "info",
        "debug",
        "warning",
        "add_scalar",
        "set_description",
        "set_postfix",
    }
)
SUMMARY_PASSES = 3
MAX_TOUCHES = 8

# Names a source text defines: functions and classes, and attributes it sets on `self`.
DEFINED_NAME = re.compile(r"(?m)^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)")
SELF_ATTRIBUTE = re.compile(r"\bself\.(\w+)[ \t]*(?::[^=\n]*)?=(?!=)")


def defined_names(source: str) -> frozenset[str]:
    """Functions, classes and `self` attributes a file defines: a call of one that the
    summaries hold no gradient facts for cannot clear gradients (the summaries follow calls
    within a file), so it need not silence the rule."""
    return frozenset(DEFINED_NAME.findall(source)) | frozenset(SELF_ATTRIBUTE.findall(source))


@dataclass(frozen=True)
class GradientEvent:
    kind: str
    node: cst.CSTNode  # the call or statement it happens at
    receiver: str | None = None  # the optimizer or model as named here; None when unknown
    loops: Loops = ()
    order: int = 0
    conditional: bool = False  # may be skipped on a pass of its innermost loop
    via: str | None = None  # the function or method it happens in
    torch: bool = False  # STEP: its receiver is known to be a torch.optim optimizer
    names: tuple[str, ...] = ()  # CALL: the names it is passed
    method: str | None = None  # CALL: the method called on `receiver`
    # The tests of the `if` statements around it in its function, innermost last, each with
    # the branch it sits in (True for the body, False for the `else`).
    guards: tuple[tuple[cst.BaseExpression, bool], ...] = ()
    # The innermost `with accelerator.accumulate(...)` around it in its function, if any:
    # the prepared optimizer's `step()` and `zero_grad()` in it run only at sync points.
    accumulate: cst.Call | None = None


@dataclass
class GradientFlow:
    events: list[GradientEvent] = field(default_factory=list)
    # Loop -> the order numbers its body covers, and the loops around it.
    spans: dict[cst.CSTNode, tuple[int, int]] = field(default_factory=dict)
    parents: dict[cst.CSTNode, Loops] = field(default_factory=dict)
    # Loops that a `break` of their own body may leave.
    breaks: set[cst.CSTNode] = field(default_factory=set)
    # Loops that read `.grad` (a manual update, a gradient norm): they use each pass's gradient.
    grad_reads: set[cst.CSTNode] = field(default_factory=set)
    # Where in the order `.grad` is read, loops or not.
    grad_read_orders: list[int] = field(default_factory=list)
    # Keys of the run's functions whose facts the walk looked up.
    looked_up: set[str] = field(default_factory=set)

    def of(self, kind: str) -> list[GradientEvent]:
        return [e for e in self.events if e.kind == kind]

    def inside(self, loop: cst.CSTNode) -> list[GradientEvent]:
        return [e for e in self.events if loop in e.loops]


def is_torch_optimizer(context: FileContext, name: str | None) -> bool:
    """Whether `name` was built as a torch.optim optimizer (a scheduler is not one)."""
    built = context.construction_of(name)
    if built is None:
        return False
    qualified = built.qualified_class
    return qualified.startswith("torch.optim.") and "lr_scheduler" not in qualified


def is_accelerate_accumulate(node: cst.BaseExpression) -> bool:
    """`accelerator.accumulate(model)`, `self.accelerator.accumulate(...)`: Hugging Face
    accelerate's gradient-accumulation context. Inside it the optimizer and scheduler that
    `accelerator.prepare` wrapped skip `step()` and `zero_grad()` except at the accumulation
    boundary (`sync_gradients`); a module's own `zero_grad()` is not wrapped and runs on every
    pass. Only a receiver named as an accelerator counts: `accumulate` alone is too common."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return False
    if node.func.attr.value != "accumulate":
        return False
    receiver = dotted_name(node.func.value)
    return receiver is not None and "accelerator" in receiver.rsplit(".", 1)[-1].lower()


def resolve_call(
    context: FileContext, class_name: str | None, call: cst.Call, tried: set[str] | None = None
) -> tuple[str, FunctionFacts, str | None] | None:
    """(key, facts, instance) of the function or method of the run a call runs: a function
    (`step_all(opt)`), a method of the enclosing class (`self.optimizer_step()`), a method of
    an object whose class is known (`trainer.backward_step(loss)`, `self.optim.backward(loss)`)
    or the `__call__`/`forward` of one (`self.loss_compute(out, y)`). `instance` is what the
    method's `self` stands for here. Kept apart from the interpreter's own lookup, which only
    takes functions and `self` methods. The keys looked up are added to `tried`."""
    callee = dotted_name(call.func)
    if callee is None:
        return None
    candidates: list[tuple[str, str | None]] = [(callee, None)]
    instance, _, method = callee.rpartition(".")
    owner = context.class_of(instance, class_name) if instance else None
    if owner is not None:
        candidates.append((f"{owner}.{method}", instance))
    owner = context.class_of(callee, class_name)
    if owner is not None:
        candidates += [(f"{owner}.__call__", callee), (f"{owner}.forward", callee)]
    for key, self_is in candidates:
        if tried is not None:
            tried.add(key)
        facts = context.functions.get(key)
        if facts is not None:
            return key, facts, self_is
    return None


def has_gradient_facts(facts: FunctionFacts) -> bool:
    return bool(
        facts.does_backward
        or facts.grad_backward
        or facts.grad_steps
        or facts.grad_clears
        or facts.grad_may_clear
        or facts.grad_touches
    )


class GradientWalker:
    """Walks statements in the order they run and records a GradientFlow."""

    def __init__(
        self,
        context: FileContext,
        class_name: str | None,
        params: Sequence[str] = (),
        own_key: str | None = None,
    ) -> None:
        self.context = context
        self.class_name = class_name
        self.params = tuple(params)
        self.own_key = own_key  # the function being summarised: not resolved into itself
        self.flow = GradientFlow()
        self.loops: list[cst.CSTNode] = []
        self.conditional = False
        self.guards: list[tuple[cst.BaseExpression, bool]] = []
        self.accumulating: list[cst.Call] = []
        self.order = 0

    # ------------------------------------------------------------ statements
    def block(self, statements: Sequence[cst.CSTNode]) -> None:
        for statement in statements:
            self.statement(statement)

    @contextmanager
    def branch(self) -> Iterator[None]:
        saved = self.conditional
        self.conditional = True
        try:
            yield
        finally:
            self.conditional = saved

    @contextmanager
    def guarded(self, test: cst.BaseExpression, taken: bool) -> Iterator[None]:
        self.guards.append((test, taken))
        try:
            yield
        finally:
            self.guards.pop()

    def statement(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self.small(small)
        elif isinstance(node, cst.If):
            self.expression(node.test)
            with self.branch():
                with self.guarded(node.test, True):
                    self.block(node.body.body)
                with self.guarded(node.test, False):
                    if isinstance(node.orelse, cst.If):
                        self.statement(node.orelse)
                    elif isinstance(node.orelse, cst.Else):
                        self.block(node.orelse.body.body)
        elif isinstance(node, cst.For):
            self.expression(node.iter)
            self.loop(node, node.body.body, None)
            self.orelse(node.orelse)
        elif isinstance(node, cst.While):
            self.loop(node, node.body.body, node.test)
            self.orelse(node.orelse)
        elif isinstance(node, cst.With):
            for item in node.items:
                self.expression(item.item)
            gates = [
                item.item
                for item in node.items
                if isinstance(item.item, cst.Call) and is_accelerate_accumulate(item.item)
            ]
            self.accumulating.extend(gates)
            try:
                self.block(node.body.body)
            finally:
                del self.accumulating[len(self.accumulating) - len(gates) :]
        elif isinstance(node, (cst.Try, cst.TryStar)):
            self.block(node.body.body)
            with self.branch():
                for handler in node.handlers:
                    self.block(handler.body.body)
                self.orelse(node.orelse)
            if node.finalbody is not None:
                self.block(node.finalbody.body.body)
        elif isinstance(node, cst.Match):
            self.expression(node.subject)
            with self.branch():
                for case in node.cases:
                    self.block(case.body.body)
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.nested(node)

    def orelse(self, node: cst.Else | None) -> None:
        if node is not None:
            with self.branch():
                self.block(node.body.body)

    def loop(
        self, node: cst.CSTNode, body: Sequence[cst.CSTNode], test: cst.BaseExpression | None
    ) -> None:
        self.flow.parents[node] = tuple(self.loops)
        start = self.order
        saved = self.conditional
        self.loops.append(node)
        self.conditional = False
        try:
            if test is not None:
                self.expression(test)
            self.block(body)
        finally:
            self.loops.pop()
            self.conditional = saved
        self.flow.spans[node] = (start, self.order)

    def small(self, node: cst.BaseSmallStatement) -> None:
        if isinstance(node, cst.Assign):
            self.expression(node.value)
            for target in node.targets:
                self.target(target.target, node)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            if node.value is not None:
                self.expression(node.value)
            self.target(node.target, node)
        elif isinstance(node, cst.Del):
            self.target(node.target, node)
        elif isinstance(node, cst.Break):
            if self.loops:
                self.flow.breaks.add(self.loops[-1])
        else:
            for child in children(node):
                self.expression(child)

    def target(self, target: cst.BaseExpression, statement: cst.CSTNode) -> None:
        """`p.grad = None`, `del p.grad`, `p.grad *= 0`: a clear of those parameters."""
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.target(element.value, statement)
        elif _is_grad(target) or (isinstance(target, cst.Subscript) and _is_grad(target.value)):
            self.emit(CLEAR, statement)

    def nested(self, node: cst.CSTNode) -> None:
        """A function or lambda defined inside a loop (an LBFGS closure) may be called there:
        what it clears may be cleared on every pass."""
        if not self.loops:
            return
        for inner in descendants([node]):
            if isinstance(inner, cst.Attribute) and inner.attr.value in ("zero_grad", "grad"):
                self.emit(MAY_CLEAR, node)
                return

    # ----------------------------------------------------------- expressions
    def expression(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Call):
            self.call(node)
            return
        if isinstance(node, cst.Lambda):
            self.nested(node)
            return
        if isinstance(node, cst.Attribute) and node.attr.value == "grad":
            self.grad_read()
        elif isinstance(node, cst.Comparison) and _is_none_test(node):
            return  # `if p.grad is not None:` only asks whether there is one
        elif isinstance(node, cst.IfExp):
            self.expression(node.test)
            with self.branch():
                self.expression(node.body)
                self.expression(node.orelse)
            return
        elif isinstance(node, cst.BooleanOperation):
            self.expression(node.left)
            with self.branch():
                self.expression(node.right)
            return
        for child in children(node):
            self.expression(child)

    def grad_read(self) -> None:
        self.flow.grad_reads.update(self.loops)
        self.flow.grad_read_orders.append(self.order)

    def call(self, call: cst.Call) -> None:
        func = call.func
        receiver_node = func.value if isinstance(func, cst.Attribute) else None
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        # `p.grad.zero_()`, `p.grad.data.mul_(0)`; not `p.grad.norm()`, which reads it.
        if receiver_node is not None and _is_grad(receiver_node) and _clears_in_place(method):
            for arg in call.args:
                self.expression(arg.value)
            self.emit(CLEAR, call)
            return
        if receiver_node is not None:
            self.expression(receiver_node)
        elif not isinstance(func, cst.Name):
            self.expression(func)
        for arg in call.args:
            self.expression(arg.value)
        receiver = dotted_name(receiver_node) if receiver_node is not None else None
        direct = self.direct_event(call, method, receiver)
        resolved = resolve_call(self.context, self.class_name, call, self.flow.looked_up)
        if resolved is not None and resolved[0] != self.own_key:
            key, facts, instance = resolved
            self.facts_events(call, facts, instance, key, skip_backward=direct == BACKWARD)
            return
        if direct is None and not self.harmless(call, receiver, method):
            names = tuple(n for n in (dotted_name(a.value) for a in call.args) if n is not None)
            self.emit(CALL, call, receiver=receiver, names=names, method=method)

    def direct_event(self, call: cst.Call, method: str | None, receiver: str | None) -> str | None:
        """The backward, step or clear a call is by itself."""
        if method in BACKWARD_METHODS or self.qualified(call) == "torch.autograd.backward":
            self.emit(BACKWARD, call)
            return BACKWARD
        if method == "zero_grad" and receiver is not None:
            self.emit(CLEAR, call, receiver=receiver)
            return CLEAR
        if method == "step" and receiver is not None:
            stepped = self.scaled_optimizer(call, receiver)
            if stepped is not None:
                self.emit(STEP, call, receiver=stepped, torch=self.torch_step(stepped))
                return STEP
            self.emit(STEP, call, receiver=receiver, torch=self.torch_step(receiver))
            if call.args:
                # `optimizer.step(closure)`: the closure re-evaluates the loss and may clear.
                self.emit(MAY_CLEAR, call)
            return STEP
        return None

    def scaled_optimizer(self, call: cst.Call, receiver: str) -> str | None:
        """`scaler.step(optimizer)` of a torch GradScaler steps `optimizer`."""
        built = self.context.construction_of(receiver)
        if built is None or not built.qualified_class.endswith("GradScaler"):
            return None
        if len(call.args) != 1 or call.args[0].keyword is not None:
            return None
        return dotted_name(call.args[0].value)

    def torch_step(self, receiver: str) -> bool:
        return is_torch_optimizer(self.context, receiver)

    def qualified(self, call: cst.Call) -> str | None:
        return self.context.imports.qualify(dotted_name(call.func))

    def facts_events(
        self,
        call: cst.Call,
        facts: FunctionFacts,
        instance: str | None,
        key: str,
        skip_backward: bool,
    ) -> None:
        if (facts.does_backward or facts.grad_backward) and not skip_backward:
            self.emit(BACKWARD, call, via=key)
        for receiver, torch in facts.grad_steps:
            stepped = translate(receiver, instance, call)
            torch = torch or self.torch_step(stepped or "")
            self.emit(STEP, call, receiver=stepped, via=key, torch=torch)
        for receiver in facts.grad_clears:
            self.emit(CLEAR, call, receiver=translate(receiver, instance, call), via=key)
        if facts.grad_may_clear:
            self.emit(MAY_CLEAR, call, via=key)
        touched = [translate(name, instance, call) for name in facts.grad_touches]
        if any(touched):
            self.emit(CALL, call, via=key, names=tuple(n for n in touched if n))

    def harmless(self, call: cst.Call, receiver: str | None, method: str | None) -> bool:
        """Calls that cannot clear gradients: builtins, torch functions, methods of modules,
        tensors and containers, and functions of this file that the summaries hold no
        gradient facts for."""
        qualified = self.qualified(call)
        if qualified is not None and (
            qualified in NOT_RECURRENT_BUILTINS or qualified.startswith("torch.")
        ):
            return True
        if method in HARMLESS_METHODS:
            return True
        if receiver is not None and method is not None:
            # `scaler.unscale_(optimizer)`, `scaler.update()`: a method of an object built from
            # a torch class; the only torch method that clears gradients, `zero_grad`, is
            # taken apart before this.
            built = self.context.construction_of(receiver)
            if built is not None and built.qualified_class.startswith("torch."):
                return True
        callee = dotted_name(call.func)
        if callee is None:
            return True  # `self.layers[0](x)`, `make()(x)`: a module or function call
        name = method or callee
        return name in self.context.local_names and not self.may_clear_by_name(name)

    def may_clear_by_name(self, name: str) -> bool:
        """Whether some function of that name in the run clears gradients."""
        return any(
            (key == name or key.endswith("." + name))
            and bool(facts.grad_clears or facts.grad_may_clear)
            for key, facts in self.context.functions.items()
        )

    def emit(
        self,
        kind: str,
        node: cst.CSTNode,
        *,
        receiver: str | None = None,
        via: str | None = None,
        torch: bool = False,
        names: tuple[str, ...] = (),
        method: str | None = None,
    ) -> None:
        self.order += 1
        self.flow.events.append(
            GradientEvent(
                kind,
                node,
                receiver,
                tuple(self.loops),
                self.order,
                self.conditional,
                via,
                torch,
                names,
                method,
                tuple(self.guards),
                self.accumulating[-1] if self.accumulating else None,
            )
        )


def translate(receiver: str, instance: str | None, call: cst.Call) -> str | None:
    """A receiver as a function names it (`self.optimizer`, `#0:opt`), as the caller names it:
    `self` becomes the object the method was called on, a parameter the argument passed."""
    if not receiver:
        return None
    head, dot, rest = receiver.partition(".")
    if head == "self":
        return f"{instance}{dot}{rest}" if instance else None
    if head.startswith("#"):
        index, _, name = head[1:].partition(":")
        argument = _argument(call, int(index), name)
        return f"{argument}{dot}{rest}" if argument else None
    return receiver


def _argument(call: cst.Call, index: int, name: str) -> str | None:
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if index < len(positional):
        return dotted_name(positional[index].value)
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return dotted_name(arg.value)
    return None


def _is_grad(node: cst.BaseExpression) -> bool:
    """`p.grad` or `p.grad.data`."""
    if isinstance(node, cst.Attribute) and node.attr.value == "data":
        node = node.value
    return isinstance(node, cst.Attribute) and node.attr.value == "grad"


def _clears_in_place(method: str | None) -> bool:
    return method is not None and method.endswith("_") and method not in GRAD_KEEPING_METHODS


def _is_none_test(node: cst.Comparison) -> bool:
    return all(
        isinstance(c.operator, (cst.Is, cst.IsNot))
        and isinstance(c.comparator, cst.Name)
        and c.comparator.value == "None"
        for c in node.comparisons
    )


def unit_flow(
    body: Sequence[cst.CSTNode], context: FileContext, class_name: str | None
) -> GradientFlow:
    walker = GradientWalker(context, class_name)
    walker.block(body)
    return walker.flow


# ------------------------------------------------------------------ summaries
def prefixes(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def reaches(event: GradientEvent, receivers: set[str], passed: set[str]) -> bool:
    """Whether a call the analysis cannot see into can reach one of the objects: a method of
    one (`trainer.on_batch_end()`), or one passed to it (`hooks.after_step(model)`)."""
    return (event.receiver is not None and event.receiver in receivers) or any(
        name in passed for name in event.names
    )


def function_gradient_facts(
    function: cst.FunctionDef,
    context: FileContext,
    class_name: str | None,
    params: Sequence[str],
    key: str,
) -> tuple[FunctionFacts, set[str]]:
    """The gradient fields of one function's facts, and the keys of the run's functions its
    walk looked up."""
    walker = GradientWalker(context, class_name, params, own_key=key)
    walker.block(function.body.body)
    events = walker.flow.events
    position = {param: index for index, param in enumerate(params)}

    def encode(receiver: str | None) -> str:
        if receiver is None:
            return ""
        head = receiver.split(".", 1)[0]
        return f"#{position[head]}:{receiver}" if head in position else receiver

    steps = sorted(
        {(encode(e.receiver), e.torch) for e in events if e.kind == STEP and not e.loops}
    )
    clears = sorted({encode(e.receiver) for e in events if e.kind == CLEAR})
    # A call it cannot see into may clear what it steps or clears itself (`self.optimizer`,
    # `self`); the objects its caller steps, the caller sees itself.
    objects = {e.receiver for e in events if e.kind in (STEP, CLEAR) and e.receiver}
    objects |= {p for name in list(objects) for p in prefixes(name)}
    may_clear = any(e.kind == MAY_CLEAR for e in events) or any(
        e.kind == CALL and reaches(e, objects, objects) for e in events
    )
    touches = sorted(
        {
            encode(name)
            for e in events
            if e.kind == CALL
            for name in (e.receiver, *e.names)
            if name is not None and (name.split(".", 1)[0] in position or name.startswith("self"))
        }
    )
    if len(touches) > MAX_TOUCHES:
        touches, may_clear = [], True
    facts = FunctionFacts(
        grad_backward=any(e.kind == BACKWARD for e in events),
        grad_steps=tuple((r, t) for r, t in steps if r),
        grad_clears=tuple(clears),
        grad_may_clear=may_clear,
    )
    if has_gradient_facts(facts):
        # Only where the call matters anyway: a function of the file with no facts at all is
        # taken to clear nothing.
        facts = replace(facts, grad_touches=tuple(touches))
    return facts, walker.flow.looked_up


def add_gradient_facts(
    functions: Sequence[tuple[str, cst.FunctionDef, str | None, Sequence[str]]],
    context: FileContext,
) -> list[str]:
    """Adds the gradient fields to the facts of a module's functions, following calls between
    them until nothing changes. Returns the names of the functions that have any."""
    looked_up: dict[str, set[str]] = {}
    with_facts: set[str] = set()
    changed: set[str] | None = None
    for _ in range(SUMMARY_PASSES):
        updated_now: set[str] = set()
        for name, function, class_name, params in functions:
            if changed is not None and not looked_up[name] & changed:
                continue
            found, looked_up[name] = function_gradient_facts(
                function, context, class_name, params, name
            )
            if has_gradient_facts(found):
                with_facts.add(name)
            old = context.functions.get(name) or FunctionFacts()
            updated = replace(
                old,
                grad_backward=found.grad_backward,
                grad_steps=found.grad_steps,
                grad_clears=found.grad_clears,
                grad_may_clear=found.grad_may_clear,
                grad_touches=found.grad_touches,
            )
            if updated != old:
                context.functions[name] = updated
                updated_now.add(name)
        if not updated_now:
            break
        changed = updated_now
    return sorted(with_facts)


def gradient_call_names(context: FileContext) -> set[str]:
    """Names whose call may step, clear or back-propagate: functions and methods with
    gradient facts, and objects built here of a class whose `__call__` does."""
    names: set[str] = set()
    callable_classes: set[str] = set()
    for key, facts in context.functions.items():
        if has_gradient_facts(facts):
            owner, _, method = key.rpartition(".")
            names.add(method)
            if method in ("__call__", "forward"):
                callable_classes.add(owner.rsplit(".", 1)[-1])
    if callable_classes:
        for name, built in context.constructions.items():
            if built.qualified_class.rsplit(".", 1)[-1] in callable_classes:
                names.add(name.rsplit(".", 1)[-1])
    return names
