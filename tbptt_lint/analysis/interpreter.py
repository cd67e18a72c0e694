"""An abstract interpreter over one unit's statements that follows recurrent state.

It runs every loop body to a fixpoint, keeps paths apart where the same condition guards a
backward and a cut (`if (t + 1) % k == 0:` twice), and records what the rules need: the value
of every state when a recurrent call reads it, the backward calls, discarded detaches, and more.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst

from tbptt_lint.analysis.context import ASSUMED_CUT, CELL_MODULES, FileContext, FunctionFacts
from tbptt_lint.analysis.events import (
    Accumulation,
    AliasCut,
    BackwardSite,
    DataCut,
    DiscardedDetach,
    InplaceDetachOnView,
    Loops,
    OptimizerCall,
    RecurrentCall,
    StateRead,
    UnitEvents,
)
from tbptt_lint.analysis.names import dotted_name, is_true_literal, keyword_arg, method_name
from tbptt_lint.analysis.values import (
    CUT,
    FRESH_UNRELATED,
    LEAF,
    NO_GRAD,
    RESET,
    Env,
    Status,
    Value,
    composite,
    fresh,
    join,
    join_envs,
)
from tbptt_lint.analysis.walk import children

NO_GRAD_CONTEXTS = frozenset(
    {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.enable_grad"}
)
BACKWARD_FUNCTIONS = frozenset({"torch.autograd.backward", "torch.autograd.grad"})
RESET_METHODS = frozenset({"new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})
DETACHING_METHODS = frozenset({"detach", "detach_"})
# Results that are plain Python numbers: they cannot hold a graph.
SCALAR_METHODS = frozenset({"item", "tolist"})
SCALAR_FUNCTIONS = frozenset({"float", "int", "bool", "len", "str", "repr"})
ELEMENTWISE_WRAPPERS = frozenset({"tuple", "list", "set"})
NOT_RECURRENT_BUILTINS = frozenset(
    {
        "len",
        "list",
        "tuple",
        "dict",
        "set",
        "zip",
        "map",
        "filter",
        "enumerate",
        "range",
        "sorted",
        "reversed",
        "min",
        "max",
        "sum",
        "any",
        "all",
        "isinstance",
        "getattr",
        "setattr",
        "hasattr",
        "print",
        "float",
        "int",
        "str",
        "bool",
        "type",
        "iter",
        "next",
        "super",
        "round",
        "abs",
        "id",
        "repr",
        "format",
        "open",
        "vars",
        "copy",
        "deepcopy",
    }
)
# Heads of qualified names that are functions, not stateful modules.
NOT_RECURRENT_HEADS = ("numpy.", "np.", "math.", "random.", "os.", "itertools.", "functools.")
MAX_PATHS = 16
MAX_LOOP_PASSES = 4


@dataclass
class Path:
    """One path through the code: variable values, plus the conditions known on it."""

    env: Env
    assumptions: frozenset[tuple[str, bool]] = frozenset()


@dataclass
class LoopFrame:
    node: cst.CSTNode
    continues: list[Env] = field(default_factory=list)
    breaks: list[Env] = field(default_factory=list)


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def names_in(node: cst.CSTNode) -> set[str]:
    """Dotted names read anywhere inside an expression."""
    found: set[str] = set()
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Name, cst.Attribute)):
            dotted = dotted_name(current)
            if dotted is not None:
                parts = dotted.split(".")
                found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
                if isinstance(current, cst.Attribute):
                    continue
        stack.extend(children(current))
    return found


def target_names(target: cst.BaseExpression) -> list[str]:
    """Flat names bound by an assignment target (`out, (h, c)` -> out, h, c)."""
    if isinstance(target, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in target.elements:
            names.extend(target_names(element.value))
        return names
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    dotted = dotted_name(target)
    return [dotted] if dotted else []


def arg_state_names(value: cst.BaseExpression) -> list[tuple[str, cst.BaseExpression]]:
    """Names an argument passes whole: `h`, `(h, c)`, `[h, c]`, or `h.detach()`-like wrappers
    of one name, each with the expression that carries it."""
    dotted = dotted_name(value)
    if dotted is not None:
        return [(dotted, value)]
    if isinstance(value, (cst.Tuple, cst.List)):
        found: list[tuple[str, cst.BaseExpression]] = []
        for element in value.elements:
            found.extend(arg_state_names(element.value))
        return found
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        inner = dotted_name(value.func.value)
        if inner is not None:
            return [(inner, value)]
    if isinstance(value, cst.Call) and len(value.args) == 1:
        inner = dotted_name(value.args[0].value)
        if inner is not None:
            return [(inner, value)]
    return []


class UnitInterpreter:
    def __init__(
        self,
        unit: cst.CSTNode,
        context: FileContext,
        *,
        class_name: str | None = None,
        summarising: Sequence[str] = (),
    ) -> None:
        self.unit = unit
        self.context = context
        self.class_name = class_name
        self.events = UnitEvents(unit, class_name)
        self.loop_stack: list[LoopFrame] = []
        self.no_grad_depth = 0
        # Set while summarising a function: its parameters start as INPUT.
        self.summarising = tuple(summarising)
        self.return_values: list[Value] = []
        self.final_env: Env = {}
        # Local copies of state: `h` -> `hidden` after `h, c = hidden` or `for h in hidden`.
        self.aliases: dict[str, str] = {}
        self._recurrent_cache: dict[int, RecurrentCall | None] = {}

    # ----------------------------------------------------------------- driving
    def run(self, body: Sequence[cst.CSTNode]) -> UnitEvents:
        env: Env = {name: Value(Status.INPUT) for name in self.summarising}
        ends = self.exec_block(body, [Path(env)])
        self.final_env = self.merge(ends).env if ends else {}
        return self.events

    @property
    def loops(self) -> Loops:
        return tuple(frame.node for frame in self.loop_stack)

    def exec_block(self, body: Sequence[cst.CSTNode], paths: list[Path]) -> list[Path]:
        for statement in body:
            if not paths:
                break
            paths = self.exec_statement(statement, paths)
        return paths

    def exec_statement(self, statement: cst.CSTNode, paths: list[Path]) -> list[Path]:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                paths = [p for path in paths for p in self.exec_small(small, path)]
            return paths
        if isinstance(statement, cst.If):
            return self.exec_if(statement, paths)
        if isinstance(statement, (cst.For, cst.While)):
            return self.exec_loop(statement, paths)
        if isinstance(statement, cst.With):
            return self.exec_with(statement, paths)
        if isinstance(statement, cst.Try):
            return self.exec_try(statement, paths)
        if isinstance(statement, cst.Match):
            merged = self.merge(paths)
            results = [
                p
                for case in statement.cases
                for p in self.exec_block(case.body.body, [Path(dict(merged.env))])
            ]
            return [self.merge(results + [merged])]
        # Nested functions and classes are units of their own.
        return paths

    @staticmethod
    def merge(paths: list[Path]) -> Path:
        env: Env | None = None
        for path in paths:
            env = join_envs(env, path.env)
        return Path(env or {})

    def limit(self, paths: list[Path]) -> list[Path]:
        if len(paths) <= MAX_PATHS:
            return paths
        return [self.merge(paths)]

    # ------------------------------------------------------------ statements
    def exec_small(self, small: cst.BaseSmallStatement, path: Path) -> list[Path]:
        env = dict(path.env)
        if isinstance(small, cst.Assign):
            self.exec_assign(small, [t.target for t in small.targets], small.value, env)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self.exec_assign(small, [small.target], small.value, env)
        elif isinstance(small, cst.AugAssign):
            self.exec_aug_assign(small, env)
        elif isinstance(small, cst.Expr):
            self.exec_expression_statement(small.value, env)
        elif isinstance(small, cst.Return):
            if small.value is not None and dotted_name(small.value) != "None":
                self.scan_calls(small.value, env)
                self.return_values.append(self.evaluate(small.value, env))
            return []
        elif isinstance(small, cst.Continue):
            if self.loop_stack:
                self.loop_stack[-1].continues.append(env)
            return []
        elif isinstance(small, cst.Break):
            if self.loop_stack:
                self.loop_stack[-1].breaks.append(env)
            return []
        elif isinstance(small, cst.Raise):
            return []
        assigned = self.assigned_names(small)
        assumptions = frozenset(
            (text, truth)
            for text, truth in path.assumptions
            if not any(name in text for name in assigned)
        )
        return [Path(env, assumptions)]

    @staticmethod
    def assigned_names(small: cst.BaseSmallStatement) -> set[str]:
        if isinstance(small, cst.Assign):
            return {n for t in small.targets for n in target_names(t.target)}
        if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            return set(target_names(small.target))
        return set()

    def exec_assign(
        self,
        statement: cst.CSTNode,
        targets: list[cst.BaseExpression],
        value: cst.BaseExpression,
        env: Env,
    ) -> None:
        recurrent = None
        if isinstance(value, cst.Call) and len(targets) == 1:
            recurrent = self.recurrent_call(statement, targets[0], value)
        if recurrent is not None:
            self.exec_recurrent_call(recurrent, targets[0], env)
            return
        self.scan_calls(value, env)
        result = self.evaluate(value, env)
        for target in targets:
            if isinstance(target, cst.Subscript):
                self.assign_subscript(target, result, env)
            else:
                self.note_alias(target, value, result)
                self.bind(target, result, env)
            self.note_accumulation(statement, target, value, env)

    def note_alias(
        self, target: cst.BaseExpression, value: cst.BaseExpression, result: Value
    ) -> None:
        """`h, c = hidden` makes local copies of a state; `h = h.detach()` then cuts the copy
        only, which TBP003 reports when `hidden` itself is never cut."""
        names = target_names(target)
        self.note_written_back(names, value)
        source = self.subscript_base(value)
        if source is not None and source not in names:
            for name in names:
                self.aliases[name] = source
            return
        is_cut = result.status == Status.FRESH and result.how == CUT and result.origin is not None
        if len(names) == 1 and names[0] in self.aliases and is_cut:
            cut = AliasCut(result.origin, names[0], self.aliases[names[0]])
            self.events.add("alias_cuts", result.origin, cut)

    def note_written_back(self, names: list[str], value: cst.BaseExpression) -> None:
        """`hidden = (h, c)` after `h = h.detach()` writes the cut copy back: whatever `hidden`
        still leaks is then the uncut `c` (TBP002), not a copy cut in vain."""
        read = names_in(value)
        kept = [
            cut for cut in self.events.alias_cuts if not (cut.state in names and cut.alias in read)
        ]
        if len(kept) != len(self.events.alias_cuts):
            self.events.alias_cuts[:] = kept

    def bind(self, target: cst.BaseExpression, value: Value, env: Env) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = [e.value for e in target.elements]
            if value.elements is not None and len(value.elements) == len(elements):
                for element, element_value in zip(elements, value.elements, strict=False):
                    self.bind(element, element_value, env)
            else:
                part = replace(value, elements=None) if value.elements is not None else value
                for element in elements:
                    self.bind(element, part, env)
            return
        if isinstance(target, cst.StarredElement):
            self.bind(target.value, value, env)
            return
        name = dotted_name(target)
        if name is None:
            return
        if self.no_grad_depth and value.status != Status.FRESH:
            value = fresh(NO_GRAD, value.origin)
        if value.status == Status.FRESH and value.via_data and value.origin is not None:
            self.events.add("data_cuts", value.origin, DataCut(value.origin, name))
        env[name] = value
        # Rebinding `h` forgets what was known of `h.x`.
        for key in [k for k in env if k.startswith(name + ".")]:
            del env[key]

    def assign_subscript(self, target: cst.Subscript, value: Value, env: Env) -> None:
        """`hidden[i] = hidden[i].detach()`: a cut of every element when it runs for every
        index of a loop over the container, a partial cut otherwise."""
        container = dotted_name(target.value)
        if container is None or container not in env:
            return
        current = env[container]
        # Cutting part of a container matters only once a backward has consumed its graph.
        if value.status != Status.FRESH or current.status != Status.STALE:
            return
        if self.subscript_covers_all(target):
            env[container] = replace(value, elements=None)
        else:
            env[container] = replace(current, status=Status.PARTIAL, elements=None)

    def subscript_covers_all(self, target: cst.Subscript) -> bool:
        if not self.loop_stack or len(target.slice) != 1:
            return False
        index = target.slice[0].slice
        if not isinstance(index, cst.Index):
            return False
        loop = self.loop_stack[-1].node
        if not isinstance(loop, cst.For):
            return False
        return dotted_name(index.value) in target_names(loop.target)

    def exec_aug_assign(self, statement: cst.AugAssign, env: Env) -> None:
        self.scan_calls(statement.value, env)
        name = dotted_name(statement.target)
        added = self.evaluate(statement.value, env)
        if name is not None:
            previous = env.get(name)
            combined = join(previous, added) if previous is not None else added
            env[name] = combined if not self.no_grad_depth else fresh(NO_GRAD, statement)
        self.note_accumulation(statement, statement.target, statement.value, env, augmented=True)

    def note_accumulation(
        self,
        statement: cst.CSTNode,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        env: Env,
        augmented: bool = False,
    ) -> None:
        accumulator = dotted_name(target)
        if accumulator is None or not self.loop_stack:
            return
        added: cst.BaseExpression | None = None
        if augmented and isinstance(statement, cst.AugAssign):
            if isinstance(statement.operator, (cst.AddAssign, cst.SubtractAssign)):
                added = value
        elif isinstance(value, cst.BinaryOperation) and isinstance(
            value.operator, (cst.Add, cst.Subtract)
        ):
            if dotted_name(value.left) == accumulator:
                added = value.right
            elif dotted_name(value.right) == accumulator:
                added = value.left
        if added is None:
            return
        added_name = dotted_name(added)
        if added_name is None:
            return
        self.events.add(
            "accumulations", statement, Accumulation(statement, accumulator, added_name, self.loops)
        )

    def exec_expression_statement(self, expression: cst.BaseExpression, env: Env) -> None:
        self.scan_calls(expression, env)
        if isinstance(expression, cst.Call):
            self.exec_call_statement(expression, env)
        elif isinstance(expression, (cst.ListComp, cst.GeneratorExp)):
            # `[h.detach_() for h in hidden]` as a statement: an in-place cut of each element.
            element = expression.elt
            if isinstance(element, cst.Call) and method_name(element) == "detach_":
                for name in names_in(expression.for_in.iter):
                    if name in env:
                        env[name] = fresh(CUT, expression)

    def exec_call_statement(self, call: cst.Call, env: Env) -> None:
        method = method_name(call)
        receiver_node = call.func.value if isinstance(call.func, cst.Attribute) else None
        receiver = dotted_name(receiver_node) if receiver_node is not None else None
        if method == "detach_" and receiver_node is not None:
            if isinstance(receiver_node, cst.Subscript):
                self.note_inplace_on_view(call, receiver_node, env)
                self.cut_element_in_place(call, receiver_node, env)
            elif receiver is not None:
                container = self.iterated_container(receiver)
                if container is not None and self.is_tensor_name(container):
                    # Iterating a tensor yields views of it.
                    self.events.add(
                        "inplace_view_detaches",
                        call,
                        InplaceDetachOnView(call, receiver, container),
                    )
                    return
                env[receiver] = fresh(CUT, call)
                if container is not None:
                    env[container] = fresh(CUT, call)
            return
        if method == "detach" and not call.args and receiver_node is not None:
            if receiver is not None and self.detaches_in_place(receiver, env):
                for name in [n for n in env if n == receiver or n.startswith(receiver + ".")]:
                    env[name] = fresh(CUT, call)
                return
            base = receiver or self.subscript_base(receiver_node)
            if base is not None:
                self.note_discarded_detach(call, _code(receiver_node), base, env)
            return
        if method == "append" and receiver is not None and len(call.args) == 1:
            added = dotted_name(call.args[0].value)
            if added is not None and self.loop_stack:
                self.events.add(
                    "accumulations", call, Accumulation(call, receiver, added, self.loops)
                )
            return
        if method in ("requires_grad_",) and receiver is not None and receiver in env:
            current = env[receiver]
            if current.status == Status.FRESH and current.how == CUT:
                env[receiver] = replace(current, how=LEAF)
            return
        callee = dotted_name(call.func)
        facts = self.function_facts(callee)
        if facts is not None and facts.inplace_cut:
            for arg in call.args:
                name = dotted_name(arg.value)
                if name is not None and name in env:
                    env[name] = fresh(CUT, call)

    def iterated_container(self, name: str) -> str | None:
        """`states` when `name` is the variable of the innermost `for name in states:`."""
        if not self.loop_stack:
            return None
        loop = self.loop_stack[-1].node
        if isinstance(loop, cst.For) and target_names(loop.target) == [name]:
            return dotted_name(loop.iter)
        return None

    def detaches_in_place(self, receiver: str, env: Env) -> bool:
        """Whether `receiver.detach()` is a custom object's in-place cut."""
        classes = self.context.inplace_detach_classes
        if not classes:
            return False
        value = env.get(receiver)
        if value is not None and value.has_graph:
            return False  # a tensor produced by a recurrent call
        built = self.context.construction_of(receiver)
        if built is None:
            return True
        return built.qualified_class in classes or built.qualified_class.rsplit(".", 1)[-1] in (
            classes
        )

    @staticmethod
    def subscript_base(node: cst.BaseExpression) -> str | None:
        while isinstance(node, cst.Subscript):
            node = node.value
        return dotted_name(node)

    def note_discarded_detach(
        self, node: cst.CSTNode, target: str, variable: str, env: Env
    ) -> None:
        value = env.get(variable)
        known_tensor = value is not None and value.has_graph
        if not known_tensor and not self.loop_stack:
            return
        # An object with its own in-place detach() is fine; without knowing the type, only
        # say so when no such class exists in the run.
        certain = known_tensor and not self.context.inplace_detach_classes
        if self.context.inplace_detach_classes and not known_tensor:
            return
        state = self.iterated_container(variable) or variable
        event = DiscardedDetach(node, target, self.loops, certain or known_tensor, state)
        self.events.add("discarded_detaches", node, event)
        # A later pass over the loop may learn that the target holds a graph.
        for recorded in self.events.discarded_detaches:
            if recorded.node is node:
                recorded.certain = recorded.certain or event.certain

    def note_inplace_on_view(self, call: cst.Call, view: cst.Subscript, env: Env) -> None:
        if isinstance(view.value, cst.Subscript):
            # `hidden[0][-1]`: indexing an element of a tuple of states gives a view of it.
            if self.subscript_base(view.value) in env:
                self.events.add(
                    "inplace_view_detaches",
                    call,
                    InplaceDetachOnView(call, _code(view), self.subscript_base(view) or ""),
                )
            return
        base = dotted_name(view.value)
        if base is None:
            return
        value = env.get(base)
        if value is None or value.elements is not None or not self.is_tensor_name(base):
            return
        self.events.add("inplace_view_detaches", call, InplaceDetachOnView(call, _code(view), base))

    def cut_element_in_place(self, call: cst.Call, element: cst.Subscript, env: Env) -> None:
        """`hidden[0].detach_()`: one element of a tuple of states cut in place."""
        base = dotted_name(element.value)
        value = env.get(base) if base is not None else None
        if base is None or value is None or not value.has_graph or self.is_tensor_name(base):
            return
        if self.subscript_covers_all(element):
            env[base] = fresh(CUT, call)
            return
        index = element.slice[0].slice if len(element.slice) == 1 else None
        position = (
            int(index.value.value)
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer)
            else None
        )
        elements = value.elements
        if elements is None and self.is_pair_state(base):
            elements = (replace(value, elements=None),) * 2
        if elements is None or position is None or not -len(elements) <= position < len(elements):
            env[base] = replace(value, status=Status.PARTIAL, elements=None)
            return
        updated = list(elements)
        updated[position] = fresh(CUT, call)
        env[base] = composite(tuple(updated), value.origin)

    def is_pair_state(self, name: str) -> bool:
        return any(
            name in r.states and r.module_class is not None and "LSTM" in r.module_class
            for r in self.events.recurrent_calls
        )

    def is_tensor_name(self, name: str) -> bool:
        """Whether `name` is known to be a single tensor rather than a tuple of them."""
        for recurrent in self.events.recurrent_calls:
            targets = (
                target_names(recurrent.statement.targets[0].target)
                if isinstance(recurrent.statement, cst.Assign)
                else []
            )
            if targets and targets[0] == name and name not in recurrent.states:
                return True  # the output sequence of a recurrent call
            if name in recurrent.states and recurrent.module_class is not None:
                return "LSTM" not in recurrent.module_class
        return False

    # ----------------------------------------------------------- control flow
    def exec_if(self, statement: cst.If, paths: list[Path]) -> list[Path]:
        condition = _code(statement.test)
        results: list[Path] = []
        for path in paths:
            known = dict(path.assumptions).get(condition)
            if known is not False:
                then_env = dict(path.env)
                self.refine(statement.test, then_env, truth=True)
                self.scan_calls(statement.test, then_env)
                then_paths = [Path(then_env, path.assumptions | {(condition, True)})]
                results += self.exec_block(statement.body.body, then_paths)
            if known is not True:
                else_env = dict(path.env)
                self.refine(statement.test, else_env, truth=False)
                else_paths = [Path(else_env, path.assumptions | {(condition, False)})]
                orelse = statement.orelse
                if isinstance(orelse, cst.If):
                    results += self.exec_if(orelse, else_paths)
                elif isinstance(orelse, cst.Else):
                    results += self.exec_block(orelse.body.body, else_paths)
                else:
                    results += else_paths
        return self.limit(results)

    @staticmethod
    def refine(test: cst.BaseExpression, env: Env, truth: bool) -> None:
        """`if h is None:` means h holds no graph on that branch."""
        if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
            target = test.comparisons[0]
            name = dotted_name(test.left)
            is_none = isinstance(target.comparator, cst.Name) and target.comparator.value == "None"
            if name is not None and is_none:
                none_branch = isinstance(target.operator, cst.Is) == truth
                if none_branch:
                    env[name] = FRESH_UNRELATED
        elif isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            name = dotted_name(test.expression)
            if name is not None and truth:
                env[name] = FRESH_UNRELATED
        else:
            name = dotted_name(test)
            if name is not None and not truth:
                env[name] = FRESH_UNRELATED

    def exec_loop(self, statement: cst.For | cst.While, paths: list[Path]) -> list[Path]:
        self.events.loop_parents.setdefault(statement, self.loops)
        head = self.merge(paths).env
        frame = LoopFrame(statement)
        self.loop_stack.append(frame)
        exits: list[Env] = []
        try:
            for _ in range(MAX_LOOP_PASSES):
                frame.continues.clear()
                frame.breaks.clear()
                body_env = dict(head)
                if isinstance(statement, cst.For):
                    self.scan_calls(statement.iter, body_env)
                    self.bind_loop_target(statement, body_env)
                else:
                    self.scan_calls(statement.test, body_env)
                ends = self.exec_block(statement.body.body, [Path(body_env)])
                end_env: Env | None = None
                for env in [p.env for p in ends] + frame.continues:
                    end_env = join_envs(end_env, env)
                new_head = join_envs(head, end_env) or head
                exits = list(frame.breaks)
                if end_env is not None:
                    exits.append(end_env)
                if new_head == head:
                    break
                head = new_head
        finally:
            self.loop_stack.pop()
        # Loops are taken to run at least once: a loop that may be skipped would otherwise
        # undo every cut made inside it, and precision matters more than that corner.
        after: Env | None = None if exits else head
        for env in exits:
            after = join_envs(after, env)
        result = [Path(after or {})]
        if statement.orelse is not None:
            result = self.exec_block(statement.orelse.body.body, result)
        return result

    def bind_loop_target(self, statement: cst.For, env: Env) -> None:
        source = (
            self.evaluate(statement.iter, env)
            if names_in(statement.iter) & env.keys()
            else FRESH_UNRELATED
        )
        element = self.element_of(source)
        container = dotted_name(statement.iter)
        for name in target_names(statement.target):
            env[name] = element
            if container is not None:
                self.aliases[name] = container

    @staticmethod
    def element_of(value: Value) -> Value:
        if value.elements:
            joined: Value | None = None
            for element in value.elements:
                joined = join(joined, element)
            return joined or FRESH_UNRELATED
        if value.status == Status.PARTIAL:
            return replace(value, status=Status.STALE, elements=None)
        return replace(value, elements=None)

    def exec_with(self, statement: cst.With, paths: list[Path]) -> list[Path]:
        no_grad = False
        for item in statement.items:
            call = item.item
            qualified = self.context.qualify(call.func if isinstance(call, cst.Call) else call)
            if qualified in NO_GRAD_CONTEXTS and qualified != "torch.enable_grad":
                no_grad = True
            elif qualified == "torch.set_grad_enabled" and isinstance(call, cst.Call):
                first = call.args[0].value if call.args else None
                no_grad = isinstance(first, cst.Name) and first.value == "False"
        self.no_grad_depth += no_grad
        try:
            return self.exec_block(statement.body.body, paths)
        finally:
            self.no_grad_depth -= no_grad

    def exec_try(self, statement: cst.Try, paths: list[Path]) -> list[Path]:
        start = self.merge(paths)
        body = self.exec_block(statement.body.body, [Path(dict(start.env))])
        results = list(body)
        for handler in statement.handlers:
            results += self.exec_block(handler.body.body, [Path(dict(start.env))])
        if statement.orelse is not None:
            results = self.exec_block(statement.orelse.body.body, results)
        if statement.finalbody is not None:
            results = self.exec_block(statement.finalbody.body.body, [self.merge(results)])
        return self.limit(results)

    # ------------------------------------------------------- recurrent calls
    def recurrent_call(
        self, statement: cst.CSTNode, target: cst.BaseExpression, call: cst.Call
    ) -> RecurrentCall | None:
        key = id(call)
        if key in self._recurrent_cache:
            return self._recurrent_cache[key]
        found = self._find_recurrent_call(statement, target, call)
        self._recurrent_cache[key] = found
        if found is not None:
            self.events.recurrent_calls.append(found)
        return found

    def _find_recurrent_call(
        self, statement: cst.CSTNode, target: cst.BaseExpression, call: cst.Call
    ) -> RecurrentCall | None:
        callee = dotted_name(call.func)
        if callee is None and isinstance(call.func, cst.Subscript):
            callee = _code(call.func)  # `cells[0](x, h)`: one module of a ModuleList
        if callee is None:
            return None
        qualified = self.context.imports.qualify(callee)
        if qualified in NOT_RECURRENT_BUILTINS or self.is_cut_callee(callee):
            return None
        if qualified is not None and qualified.startswith(NOT_RECURRENT_HEADS):
            return None
        construction = self.context.construction_of(callee)
        module_class = construction.qualified_class if construction else None
        if module_class is None and callee.endswith(".forward"):
            owner = self.context.construction_of(callee.rsplit(".", 1)[0])
            module_class = owner.qualified_class if owner else None
        if (
            module_class is not None
            and module_class.startswith("torch.nn.")
            and not (self.context.is_recurrent_class(module_class))
        ):
            return None
        if qualified is not None and qualified.startswith("torch.") and module_class is None:
            return None
        if callee.split(".")[-1] in ("detach", "clone", "to", "cuda", "cpu", "contiguous"):
            return None
        bound = target_names(target)
        carried: dict[str, cst.BaseExpression] = {}
        groups: list[tuple[str, ...]] = []
        for arg in call.args:
            passed = arg_state_names(arg.value)
            in_group = [name for name, _ in passed if name in bound]
            for name, expression in passed:
                if name in bound:
                    carried[name] = expression
            if len(in_group) > 1:
                groups.append(tuple(in_group))
        if not carried:
            return None
        # `h = f(h)` with nothing else passed in transforms the state rather than stepping
        # it: a recurrent call also takes an input.
        if all(
            any(arg.value is expression for expression in carried.values()) for arg in call.args
        ):
            return None
        states = tuple(carried)
        return RecurrentCall(
            call=call,
            statement=statement,
            callee=callee,
            module_class=module_class,
            states=states,
            state_args=carried,
            groups=tuple(groups) or (states,),
            loops=self.loops,
            no_grad=bool(self.no_grad_depth),
            cuts_input=self.class_cuts_input(construction, call),
        )

    def class_cuts_input(self, construction: object, call: cst.Call) -> bool:
        forward_cuts = self.context.forward_cuts
        if not forward_cuts:
            return False
        qualified = getattr(construction, "qualified_class", None)
        if qualified is not None:
            short = qualified.rsplit(".", 1)[-1]
            return bool(forward_cuts.get(short) or forward_cuts.get(qualified))
        # The object's class is unknown: a forward in this file that cuts its state input
        # may be the one called, so stay silent rather than guess.
        return any(forward_cuts.values())

    def exec_recurrent_call(
        self, recurrent: RecurrentCall, target: cst.BaseExpression, env: Env
    ) -> None:
        for arg in recurrent.call.args:
            if not any(arg.value is expr for expr in recurrent.state_args.values()):
                self.scan_calls(arg.value, env)
        for name, expression in recurrent.state_args.items():
            value = self.evaluate(expression, env)
            if recurrent.cuts_input and value.has_graph:
                value = fresh(CUT, recurrent.call)
            self.record_read(recurrent, name, value)
        facts = self.function_facts(recurrent.callee)
        if facts is not None and facts.does_backward:
            self.apply_backward(recurrent.call, env)
        if self.no_grad_depth:
            produced = fresh(NO_GRAD, recurrent.call)
        elif facts is not None and facts.returns_stale:
            produced = Value(Status.STALE, "", recurrent.call, frozenset({recurrent.call}))
            self.events.consumed.add(id(recurrent.call))
        elif facts is not None and facts.returns_cut:
            produced = fresh(CUT, recurrent.call)
        else:
            produced = self.produced_by(recurrent, target)
        self.bind(target, produced, env)

    def produced_by(self, recurrent: RecurrentCall, target: cst.BaseExpression) -> Value:
        """What a recurrent call hands back: a live graph, except the parts its own function
        cuts before returning them (a `forward` ending `return out, h.detach()`)."""
        live = Value(Status.LIVE, "", recurrent.call)
        arity = _unpacked_length(target)
        cuts = self.returned_cuts(recurrent.callee, arity)
        if not any(cuts):
            return live
        if arity is None:
            return fresh(CUT, recurrent.call)
        parts = tuple(fresh(CUT, recurrent.call) if cut else live for cut in cuts)
        return composite(parts, recurrent.call)

    def returned_cuts(self, callee: str, arity: int | None) -> tuple[bool, ...]:
        """Which parts of the call's result its function cut, for a result unpacked into
        `arity` names (None: bound whole)."""
        cuts = (False,) * (arity or 1)
        for facts in self.callee_facts(callee):
            if facts.returns_cut:
                return (True,) * len(cuts)
            if arity is not None and len(facts.returns_cut_elements) == arity:
                cuts = tuple(a or b for a, b in zip(cuts, facts.returns_cut_elements, strict=True))
        return cuts

    def callee_facts(self, callee: str) -> list[FunctionFacts]:
        """Facts of what a call runs: a function, `self.step`, the `forward` of an object's
        class (`model(x, h)`), or one of its methods (`model.training_step(x, h)`).

        When a plain name's class is unknown (a parameter, `model: M`), every class of the file
        with that method may be the one called, so all of them are returned: the caller takes
        a cut by any of them as a cut, because a false alarm costs more than a missed leak.
        Not for `self.lstm`: submodules are built in an `__init__` the analysis may not have
        read, and are rarely the file's own model class."""
        facts = self.function_facts(callee)
        if facts is not None:
            return [facts]
        functions = self.context.functions
        instance, _, method = callee.rpartition(".")
        if not instance or not any(n.endswith("." + method) for n in functions):
            instance, method = callee, "forward"
        class_name = self.context.class_of(instance, self.class_name)
        if class_name is not None:
            found = functions.get(f"{class_name}.{method}")
            return [found] if found is not None else []
        if not instance.isidentifier():
            return []
        return [
            facts
            for name, facts in functions.items()
            if name.count(".") == 1
            and name.endswith("." + method)
            # Still the guess that summaries start from: taking it would let a method that
            # calls an unknown object count itself as the cut.
            and facts is not ASSUMED_CUT
        ]

    def record_read(self, recurrent: RecurrentCall, name: str, value: Value) -> None:
        key = (id(recurrent.call), name)
        read = self.events.reads.get(key)
        if read is None:
            read = self.events.reads[key] = StateRead(recurrent, name, value)
        else:
            read.value = join(read.value, value) or value
        for origin, how in value.all_sources():
            if id(origin) not in read.how_by_origin:
                read.origins.append(origin)
                read.how_by_origin[id(origin)] = how

    # --------------------------------------------------------- side effects
    def scan_calls(self, expression: cst.CSTNode, env: Env) -> None:
        """Backward and optimizer calls anywhere inside an expression."""
        for call in self.calls_in(expression):
            site = self.backward_site(call)
            if site is not None:
                self.events.add("backwards", call, site)
                for loop in site.loops:
                    self.events.loops_with_backward.add(loop)
                self.apply_backward(call, env)
                continue
            if self.context.stateful_classes and self.module_state_call(call, env):
                continue
            method = method_name(call)
            if method in ("zero_grad", "step") and isinstance(call.func, cst.Attribute):
                receiver = dotted_name(call.func.value)
                if receiver is not None:
                    self.events.add(
                        "optimizer_calls", call, OptimizerCall(call, receiver, method, self.loops)
                    )

    def module_state_call(self, call: cst.Call, env: Env) -> bool:
        """`model(x)` on a module whose forward carries `self.hidden`, and `model.reset()`
        on one of its methods that cuts or resets it. Returns whether the call was one."""
        callee = dotted_name(call.func)
        if callee is None:
            return False
        instance, method = callee, None
        if self.context.class_of(callee, self.class_name) not in self.context.stateful_classes:
            if not isinstance(call.func, cst.Attribute):
                return False
            instance = dotted_name(call.func.value) or ""
            method = call.func.attr.value
        class_name = self.context.class_of(instance, self.class_name)
        attributes = self.context.stateful_classes.get(class_name or "")
        if not attributes or class_name is None:
            return False
        if method is not None and method != "forward":
            touched = self.context.state_methods.get(class_name, {}).get(method)
            if not touched:
                return False
            for attribute, how in touched.items():
                env[f"{instance}.{attribute}"] = fresh(how, call)
            return True
        recurrent = self._recurrent_cache.get(id(call))
        if recurrent is None:
            states = tuple(f"{instance}.{a}" for a in attributes)
            recurrent = RecurrentCall(
                call=call,
                statement=call,
                callee=instance,
                module_class=class_name,
                states=states,
                state_args={state: call for state in states},
                groups=(states,),
                loops=self.loops,
                no_grad=bool(self.no_grad_depth),
            )
            self._recurrent_cache[id(call)] = recurrent
            self.events.recurrent_calls.append(recurrent)
        for attribute, how in attributes.items():
            state = f"{instance}.{attribute}"
            if how == RESET:
                continue
            value = env.get(state, FRESH_UNRELATED)
            if how in (CUT, LEAF) and value.has_graph:
                value = fresh(CUT, call)
            self.record_read(recurrent, state, value)
            env[state] = (
                fresh(NO_GRAD, call) if self.no_grad_depth else Value(Status.LIVE, "", call)
            )
        return True

    @staticmethod
    def calls_in(expression: cst.CSTNode) -> Iterator[cst.Call]:
        stack: list[cst.CSTNode] = [expression]
        found: list[cst.Call] = []
        while stack:
            node = stack.pop()
            if isinstance(node, (cst.Lambda, cst.FunctionDef)):
                continue
            if isinstance(node, cst.Call):
                found.append(node)
            stack.extend(reversed(list(children(node))))
        # Inner calls run before the calls that take their results.
        return reversed(found)

    def backward_site(self, call: cst.Call) -> BackwardSite | None:
        method = method_name(call)
        roots: tuple[cst.BaseExpression, ...] = ()
        helper = None
        if method in ("backward", "manual_backward"):
            receiver = call.func.value  # type: ignore[attr-defined]
            roots = (receiver,) + tuple(arg.value for arg in call.args if arg.keyword is None)
        else:
            qualified = self.context.qualify(call.func)
            if qualified in BACKWARD_FUNCTIONS:
                roots = tuple(arg.value for arg in call.args[:1])
            else:
                facts = self.function_facts(dotted_name(call.func))
                if facts is None or not facts.does_backward:
                    return None
                helper = dotted_name(call.func)
                roots = tuple(arg.value for arg in call.args)
        retain = keyword_arg(call, "retain_graph")
        return BackwardSite(
            call=call,
            loops=self.loops,
            retain_graph=retain is not None and is_true_literal(retain.value),
            roots=roots,
            via_helper=helper,
        )

    def apply_backward(self, call: cst.Call, env: Env) -> None:
        for name, value in list(env.items()):
            if value.has_graph or (value.elements and any(e.has_graph for e in value.elements)):
                if value.status == Status.LIVE:
                    self.events.consumed.update(
                        id(origin) for origin, how in value.all_sources() if how == "LIVE"
                    )
                env[name] = value.consumed_by(call)

    # ------------------------------------------------------------ evaluation
    def function_facts(self, callee: str | None) -> FunctionFacts | None:
        if callee is None:
            return None
        facts = self.context.functions.get(callee)
        if facts is None and callee.startswith("self.") and self.class_name:
            facts = self.context.functions.get(f"{self.class_name}.{callee[5:]}")
        return facts

    def is_cut_callee(self, callee: str | None) -> bool:
        if callee is None:
            return False
        facts = self.function_facts(callee)
        if facts is not None and facts.returns_cut:
            return True
        qualified = self.context.imports.qualify(callee)
        return self.context.is_detach_function(qualified, callee)

    def evaluate(self, node: cst.BaseExpression, env: Env) -> Value:
        value = self._evaluate(node, env)
        if self.no_grad_depth and value.status != Status.FRESH:
            return fresh(NO_GRAD, node)
        return value

    def _evaluate(self, node: cst.BaseExpression, env: Env) -> Value:
        dotted = dotted_name(node)
        if dotted is not None:
            if dotted in env:
                return env[dotted]
            if isinstance(node, cst.Attribute):
                if node.attr.value == "data":
                    inner = self._evaluate(node.value, env)
                    if inner.status != Status.FRESH or inner.elements is not None:
                        return fresh(CUT, node, via_data=True)
                    return inner
                return self._evaluate(node.value, env)
            if dotted == "None":
                return fresh(RESET, node)
            return FRESH_UNRELATED
        if isinstance(node, cst.Attribute):
            if node.attr.value == "data":
                return fresh(CUT, node, via_data=True)
            return self._evaluate(node.value, env)
        if isinstance(node, cst.Call):
            return self.evaluate_call(node, env)
        if isinstance(node, (cst.Tuple, cst.List)):
            elements = tuple(
                self._evaluate(e.value, env)
                for e in node.elements
                if not isinstance(e, cst.StarredElement)
            )
            return composite(elements, node)
        if isinstance(node, cst.Dict):
            values = tuple(
                self._evaluate(e.value, env)
                for e in node.elements
                if isinstance(e, cst.DictElement)
            )
            return composite(values, node)
        if isinstance(node, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
            return self.evaluate_comprehension(node, node.elt, env)
        if isinstance(node, cst.DictComp):
            return self.evaluate_comprehension(node, node.value, env)
        if isinstance(node, cst.Subscript):
            base = self._evaluate(node.value, env)
            if base.elements is not None and len(node.slice) == 1:
                index = node.slice[0].slice
                if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                    position = int(index.value.value)
                    if -len(base.elements) <= position < len(base.elements):
                        return base.elements[position]
            return self.element_of(base) if base.elements is not None else base
        if isinstance(node, cst.IfExp):
            return (
                join(self._evaluate(node.body, env), self._evaluate(node.orelse, env))
                or FRESH_UNRELATED
            )
        if isinstance(node, (cst.Lambda, cst.SimpleString, cst.Integer, cst.Float)):
            return FRESH_UNRELATED
        return self.join_of_names(node, env)

    def join_of_names(self, node: cst.CSTNode, env: Env) -> Value:
        result: Value | None = None
        for name in names_in(node):
            if name in env:
                result = join(result, replace(env[name], elements=None))
        return result or FRESH_UNRELATED

    def evaluate_call(self, call: cst.Call, env: Env) -> Value:
        method = method_name(call)
        receiver_node = call.func.value if isinstance(call.func, cst.Attribute) else None
        if method in DETACHING_METHODS:
            return fresh(CUT, call)
        if method in SCALAR_METHODS:
            return fresh(CUT, call)
        if method in RESET_METHODS:
            return fresh(RESET, call)
        if method == "requires_grad_" and receiver_node is not None:
            inner = self._evaluate(receiver_node, env)
            if inner.status == Status.FRESH and inner.how == CUT:
                return replace(inner, how=LEAF)
            return inner
        callee = dotted_name(call.func)
        qualified = self.context.imports.qualify(callee)
        if qualified in SCALAR_FUNCTIONS:
            return fresh(CUT, call)
        if qualified in ("torch.autograd.Variable", "Variable") and call.args:
            inner = self._evaluate(call.args[0].value, env)
            return (
                inner
                if inner.status == Status.FRESH and inner.how == CUT
                else self.join_of_names(call, env)
            )
        if self.is_cut_callee(callee):
            return fresh(CUT, call)
        if qualified in ELEMENTWISE_WRAPPERS and len(call.args) == 1:
            return self._evaluate(call.args[0].value, env)
        if qualified == "map" and len(call.args) == 2:
            return self.evaluate_map(call, env)
        if qualified is not None and qualified.endswith("_like") and qualified.startswith("torch."):
            return fresh(RESET, call)
        # `h.clone()`, `h.to(device)`, `model.init_hidden(b)`, `f(h, x)`: the values passed
        # in, receiver included. A call that takes nothing with a graph or a cut builds a
        # new value.
        value: Value | None = None
        if method is not None and receiver_node is not None:
            value = self._evaluate(receiver_node, env)
        for arg in call.args:
            value = join(value, self._evaluate(arg.value, env))
        if value is None or (value.status == Status.FRESH and value.how in (RESET, NO_GRAD)):
            return fresh(RESET, call)
        return replace(value, elements=None) if value.status != Status.FRESH else value

    def evaluate_map(self, call: cst.Call, env: Env) -> Value:
        function, iterable = call.args[0].value, call.args[1].value
        source = self._evaluate(iterable, env)
        if isinstance(function, cst.Lambda) and function.params.params:
            inner = dict(env)
            inner[function.params.params[0].name.value] = self.element_of(source)
            result = self._evaluate(function.body, inner)
        elif self.is_cut_callee(dotted_name(function)) or (
            (dotted_name(function) or "").rsplit(".", 1)[-1] in DETACHING_METHODS
        ):
            result = fresh(CUT, call)
        else:
            result = self.element_of(source)
        if result.status == Status.FRESH and source.has_graph:
            return fresh(result.how or CUT, call, via_data=result.via_data)
        return replace(result, elements=None) if result.status != Status.FRESH else result

    def evaluate_comprehension(
        self, node: cst.BaseExpression, element: cst.BaseExpression, env: Env
    ) -> Value:
        inner = dict(env)
        clause: cst.CompFor | None = node.for_in  # type: ignore[attr-defined]
        source: Value = FRESH_UNRELATED
        while clause is not None:
            source = self._evaluate(clause.iter, inner)
            item = self.element_of(source)
            if isinstance(clause.iter, cst.Call) and method_name(clause.iter) == "items":
                item = replace(item, elements=None)
                if isinstance(clause.target, cst.Tuple) and len(clause.target.elements) == 2:
                    self.bind(clause.target.elements[0].value, FRESH_UNRELATED, inner)
                    self.bind(clause.target.elements[1].value, item, inner)
                    clause = clause.inner_for_in
                    continue
            self.bind(clause.target, item, inner)
            clause = clause.inner_for_in
        value = self._evaluate(element, inner)
        if value.status == Status.FRESH:
            return Value(Status.FRESH, value.how or RESET, node, via_data=value.via_data)
        if value.status == Status.PARTIAL:
            return Value(Status.PARTIAL, "", node, value.backwards)
        return replace(value, elements=None)


def _unpacked_length(target: cst.BaseExpression) -> int | None:
    """How many names a tuple target unpacks a result into (`loss, h = ...`: 2); None for a
    single name or a starred target."""
    if not isinstance(target, (cst.Tuple, cst.List)):
        return None
    if any(isinstance(e, cst.StarredElement) for e in target.elements):
        return None
    return len(target.elements)


def is_cell_class(qualified: str | None) -> bool:
    return qualified in CELL_MODULES
