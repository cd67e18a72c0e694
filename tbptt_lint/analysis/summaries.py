"""Per-module facts other code needs: which functions cut state, which call backward, which
classes detach in place or cut their state inside `forward`, and what objects were built from.

A helper counts as a cut only when its body really cuts: names never decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import libcst as cst

from tbptt_lint.analysis.attributes import (
    UNKNOWN,
    index_definitions,
    runs_without_gradients,
    writes_back_attribute,
)
from tbptt_lint.analysis.candidates import mentions_helper_attributes
from tbptt_lint.analysis.context import (
    ASSUMED_CUT,
    SUMMARY_PASSES,
    Construction,
    FileContext,
    Interpretation,
)
from tbptt_lint.analysis.gradients import add_gradient_facts
from tbptt_lint.analysis.index import FunctionFacts
from tbptt_lint.analysis.interpreter import UnitInterpreter, constant_truth
from tbptt_lint.analysis.losses import NO_LOSS_FACTS, LossFacts, loss_facts
from tbptt_lint.analysis.names import ImportMap, class_call, dotted_name, method_name, target_names
from tbptt_lint.analysis.values import (
    CUT,
    LEAF,
    NO_GRAD,
    PARTIAL_CUT,
    RESET,
    Status,
    Value,
    partly_cut,
)
from tbptt_lint.analysis.walk import NESTED_SCOPES, children, descendants, node_fact


@dataclass
class ModuleFacts:
    """Facts keyed by names local to the module (`repackage_hidden`, `Model.forward`)."""

    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    inplace_detach_classes: set[str] = field(default_factory=set)
    forward_cuts: dict[str, frozenset[int]] = field(default_factory=dict)
    # Class -> attributes its `forward` carries from call to call (`self.hidden`), with how
    # forward treats them on entry: "carried", or CUT/RESET when it cuts or resets them.
    stateful_classes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Class -> positions (after self) of `forward` parameters it re-initialises unconditionally.
    forward_resets: dict[str, frozenset[int]] = field(default_factory=dict)
    # Class -> method -> attributes the method cuts or resets (`def reset(self): ...`).
    state_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # Class -> method other than `forward` -> attributes it feeds back into a recurrent call
    # and stores again (`self.hx, self.cx = self.cell(obs, (self.hx, self.cx))` in `act`),
    # as `stateful_classes` has them for `forward`.
    carrying_methods: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def iter_functions(
    module: cst.Module,
) -> Iterator[tuple[str, cst.FunctionDef, str | None]]:
    """(local name, function, enclosing class) for module-level functions and methods."""
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef):
            yield statement.name.value, statement, None
        elif isinstance(statement, cst.ClassDef):
            for member in statement.body.body:
                if isinstance(member, cst.FunctionDef) and not _autograd_member(member):
                    yield (
                        f"{statement.name.value}.{member.name.value}",
                        member,
                        (statement.name.value),
                    )


def _autograd_member(method: cst.FunctionDef) -> bool:
    """A static `forward` or `backward`: a `torch.autograd.Function`'s, run by `Fn.apply(...)`,
    never by calling a module (`model(x, h)`), whose unknown class it must not stand for."""
    return method.name.value in ("forward", "backward") and any(
        dotted_name(decorator.decorator) == "staticmethod" for decorator in method.decorators
    )


def parameter_names(function: cst.FunctionDef, skip_self: bool) -> list[str]:
    params = [p.name.value for p in function.params.params]
    params += [p.name.value for p in function.params.posonly_params]
    if skip_self and params and params[0] in ("self", "cls"):
        params = params[1:]
    return params


def collect_constructions(
    module: cst.Module,
    imports: ImportMap,
    wrappings: list[tuple[str, Construction]] | None = None,
) -> dict[str, Construction]:
    """`name = Class(...)` and `self.name = Class(...)` anywhere in the file. A wrapping of the
    object by its own name (`model = Wrapper(model)`) keeps the class it was built from; it
    goes into `wrappings` instead, for the caller to decide whether the wrapper runs code of
    its own (see `api.own_wrappers`)."""
    found: dict[str, Construction] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call):
            built = class_call(node.value)
            qualified = imports.qualify(dotted_name(built.func))
            inner = _wrapped_construction(built, qualified, imports)
            if inner is not None:
                built, qualified = inner  # `nn.DataParallel(Net())` is a `Net`
            if qualified is not None and qualified.rsplit(".", 1)[-1][:1].isupper():
                for target in node.targets:
                    for name in target_names(target.target):
                        construction = Construction(qualified, built)
                        if not _wraps(built, name):
                            found.setdefault(name, construction)
                        elif wrappings is not None:
                            wrappings.append((name, construction))
            continue
        stack.extend(children(node))
    return found


# Torch wrappers whose call runs the wrapped module's `forward`, and nothing of their own.
HANDING_ON_WRAPPERS = frozenset(
    {
        "torch.nn.DataParallel",
        "torch.nn.parallel.DataParallel",
        "torch.nn.parallel.DistributedDataParallel",
        "torch.nn.parallel.data_parallel.DataParallel",
        "torch.nn.parallel.distributed.DistributedDataParallel",
    }
)


def _wrapped_construction(
    call: cst.Call, qualified: str | None, imports: ImportMap
) -> tuple[cst.Call, str] | None:
    """`nn.DataParallel(Net(...))`: the class the wrapper is built around, built in place."""
    if qualified not in HANDING_ON_WRAPPERS or not call.args or call.args[0].keyword:
        return None
    first = call.args[0].value
    if not isinstance(first, cst.Call):
        return None
    built = class_call(first)
    inner = imports.qualify(dotted_name(built.func))
    if inner is None or not inner.rsplit(".", 1)[-1][:1].isupper():
        return None
    return built, inner


def _wraps(call: cst.Call, name: str) -> bool:
    """`model = DDP(model)`, `self.net = nn.DataParallel(self.net)`: a wrapper that hands
    every call on to the object it is given, which keeps the class it was built from."""
    first = call.args[0] if call.args else None
    return first is not None and first.keyword is None and dotted_name(first.value) == name


def summarise_module(
    module: cst.Module,
    context: FileContext,
    gradient_walk: frozenset[str] | None = None,
    unasked: frozenset[str] = frozenset(),
) -> ModuleFacts:
    """`unasked`: top-level functions whose facts no code of the module can ask for (phase 2
    of a file read in parts): not summarised."""
    facts = ModuleFacts()
    if context.interpretation is None:
        context.interpretation = INTERPRETATION
    index_definitions(module, context)
    # Only functions that touch a cut or a backward can be helpers worth knowing, and those
    # that hand on what such a helper returns (`def loss(self, x, h): out, h = self(x, h)`).
    functions = _worth_summarising([f for f in iter_functions(module) if f[0] not in unasked])
    # Optimistic start for helpers that call themselves (`repackage_hidden`): assume each
    # does cut, then let the passes take back what is false.
    for name, _, _ in functions:
        context.functions.setdefault(name, ASSUMED_CUT)
    # A later pass reads again only the functions that mention a function whose facts changed
    # since they were last read (or themselves): the others would come out the same. A file
    # of many loops that call no function of the file is read once, not twice.
    # (What a function mentions is walked for only once a second pass needs it: most files
    # are settled in one.)
    mentioned: dict[str, frozenset[str]] = {}
    read_at: dict[str, int] = {}
    changed_at: dict[str, int] = {}  # last name component -> when its facts last changed
    clock = 0
    for _ in range(SUMMARY_PASSES):
        changed = False
        for name, function, class_name in functions:
            if name in read_at:
                if name not in mentioned:
                    mentioned[name] = _mentioned_names(function)
                if not any(changed_at.get(word, -1) >= read_at[name] for word in mentioned[name]):
                    continue
            clock += 1
            read_at[name] = clock
            summary = summarise_function(function, context, class_name)
            if _without_gradients(context.functions.get(name)) != summary:
                changed = True
                changed_at[name.rsplit(".", 1)[-1]] = clock
            # Replaced even when equal, so that no ASSUMED_CUT is left once a body was read.
            context.functions[name] = summary
            if class_name is not None and function.name.value == name.split(".")[-1]:
                context.functions.setdefault(name.split(".")[-1], summary)
        if not changed:
            break
    asked = (f for f in iter_functions(module) if f[0] not in unasked)
    gradient_functions = add_gradient_facts(
        _with_parameters(_walked(asked, gradient_walk)), context
    )
    facts.functions = {
        name: context.functions[name]
        for name in [name for name, _, _ in functions] + gradient_functions
    }
    for statement in module.body:
        if isinstance(statement, cst.ClassDef):
            summarise_class(statement, context, facts)
    return facts


# Looked up for calls whose callee is no name in the text: `self(x)`, `model(x)`, `Model(...)`.
IMPLICIT_METHODS = frozenset({"forward", "__call__", "__init__"})


def _mentioned_names(function: cst.FunctionDef) -> frozenset[str]:
    """Every name and attribute the function's body, parameters and decorators hold (its own
    name only where it calls itself): the facts it may look up are of functions whose name
    ends in one of them, or of an implicit method."""
    words = set(IMPLICIT_METHODS)
    for node in descendants([function.body, function.params, *function.decorators]):
        if isinstance(node, cst.Name):
            words.add(node.value)
    return frozenset(words)


def _worth_summarising(
    functions: list[tuple[str, cst.FunctionDef, str | None]],
) -> list[tuple[str, cst.FunctionDef, str | None]]:
    """Functions that touch a cut or a backward, and those that call one of them in this
    module (by name, as `self.name`, or `self(...)` for the class's `forward`), kept in file
    order so that the summary passes meet a callee before its caller."""
    kept = {name for name, function, _ in functions if mentions_helper_attributes(function)}
    # Only a function beside a kept one may call it: a method of a class with a kept method,
    # or a module-level function beside a kept module-level function. Walked once, on need.
    owners = {owner for name, _, owner in functions if name in kept}
    calls = {
        name: _local_callees(function, owner)
        for name, function, owner in functions
        if name not in kept and owner in owners
    }
    grown = bool(calls)
    while grown:
        grown = False
        for name, callees in calls.items():
            if name not in kept and callees & kept:
                kept.add(name)
                grown = True
    return [f for f in functions if f[0] in kept]


def _local_callees(function: cst.FunctionDef, owner: str | None) -> set[str]:
    """Names, as `iter_functions` keys them, that a function may call in its module."""
    found: set[str] = set()
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if not isinstance(node, cst.Call):
            continue
        callee = dotted_name(node.func)
        if callee is None:
            continue
        if owner is not None and callee in ("self", "self.forward"):
            found.add(f"{owner}.forward")
        elif owner is not None and callee.startswith("self.") and callee.count(".") == 1:
            found.add(f"{owner}.{callee[5:]}")
        elif callee.isidentifier():
            found.add(callee)
    return found


def _with_parameters(
    functions: Iterable[tuple[str, cst.FunctionDef, str | None]],
) -> list[tuple[str, cst.FunctionDef, str | None, list[str]]]:
    return [
        (name, function, class_name, parameter_names(function, class_name is not None))
        for name, function, class_name in functions
    ]


def _walked(
    functions: Iterable[tuple[str, cst.FunctionDef, str | None]], walk: frozenset[str] | None
) -> Iterator[tuple[str, cst.FunctionDef, str | None]]:
    """The functions whose gradient facts are computed: those named in `walk` (see
    prefilter.gradient_walk), or all."""
    for item in functions:
        if walk is None or item[1].name.value in walk:
            yield item


def summarise_gradients(
    module: cst.Module, context: FileContext, walk: frozenset[str] | None = None
) -> dict[str, FunctionFacts]:
    """Only the gradient facts of a module's functions (TBP012), without the interpreter."""
    names = add_gradient_facts(_with_parameters(_walked(iter_functions(module), walk)), context)
    return {name: context.functions[name] for name in names}


def summarise_losses(module: cst.Module, context: FileContext) -> dict[str, LossFacts]:
    """What the functions of a module that phase 1 reads only for TBP012 back-propagate for
    their callers, or hand back after their backward (without the interpreter)."""
    found: dict[str, LossFacts] = {}
    for name, function, class_name, params in _with_parameters(iter_functions(module)):
        facts = loss_facts(function, params, context.imports, context.functions, class_name)
        if facts != NO_LOSS_FACTS:
            found[name] = facts
    return found


def _without_gradients(facts: FunctionFacts | None) -> FunctionFacts | None:
    """Facts as the interpreter summarises them: the gradient fields come from
    `add_gradient_facts`, run after it."""
    if facts is None:
        return None
    return replace(
        facts,
        grad_backward=False,
        grad_steps=(),
        grad_clears=(),
        grad_may_clear=False,
        grad_touches=(),
    )


def summarise_function(
    function: cst.FunctionDef, context: FileContext, class_name: str | None
) -> FunctionFacts:
    params = parameter_names(function, skip_self=class_name is not None)
    interpreter = UnitInterpreter(function, context, class_name=class_name, summarising=params)
    if runs_without_gradients(function, context):
        # `@torch.no_grad() def copy_state(s): return tuple(t.clone() for t in s)`: what the
        # body computes holds no graph, so a copy it returns is a cut.
        interpreter.no_grad_depth = 1
    events = interpreter.run(function.body.body)
    returns = interpreter.return_values
    returns_cut = _all_cut(returns)
    returns_stale = any(v.status == Status.STALE for v in returns)
    inplace_cut = any(_cut_in_place_on_exit(interpreter, function, p) for p in params)
    # Only a function that back-propagates (itself or through a helper) can do so for callers.
    losses = (
        loss_facts(function, params, context.imports, context.functions, class_name)
        if events.backwards
        else NO_LOSS_FACTS
    )
    return FunctionFacts(
        returns_cut=returns_cut,
        inplace_cut=inplace_cut,
        does_backward=bool(events.backwards),
        returns_stale=returns_stale,
        returns_cut_elements=cut_elements(returns),
        returns_partly_cut=None if returns_cut else partly_cut_shape(returns),
        cuts_tensor=not returns_cut and _cuts_tensor(function, context, class_name, params),
        backprop_params=losses.params,
        returns_backprop=losses.returns,
        detaches=not returns_cut and _detaches(function),
        flag_cut=None if returns_cut else flag_cut(function, context, class_name, params),
    )


# A helper whose cut a flag decides is short: a longer one is not read twice more.
FLAG_HELPER_STATEMENTS = 12


def flag_cut(
    function: cst.FunctionDef, context: FileContext, class_name: str | None, params: list[str]
) -> tuple[str, int, int, bool, bool] | None:
    """For a helper that tests a parameter directly (`return h if keep_graph else
    h.detach()`, `if not keep_graph: h = h.detach()`): the body read once with the flag true
    and once false. When it returns a cut for one value only, the parameter, its position, its
    default, and whether each value gives a cut (see `FunctionFacts.flag_cut`)."""
    if len(function.body.body) > FLAG_HELPER_STATEMENTS:
        return None
    flag = _tested_flag(function)
    if flag is None:
        return None
    cuts: list[bool] = []
    for truth in (True, False):
        interpreter = UnitInterpreter(function, context, class_name=class_name, summarising=params)
        if runs_without_gradients(function, context):
            interpreter.no_grad_depth = 1
        interpreter.fixed_truths = {flag: truth}
        interpreter.run(function.body.body)
        cuts.append(_all_cut(interpreter.return_values))
    if cuts[0] == cuts[1]:
        return None
    position = params.index(flag) if flag in params else -1
    return flag, position, _default_truth(function, flag), cuts[0], cuts[1]


def _tested_flag(function: cst.FunctionDef) -> str | None:
    """A parameter an `if` or a conditional expression of the body tests as it is (`if
    keep_graph:`, `x if not detach else y`), and that the body never rebinds."""
    names = {p.name.value for p in (*function.params.params, *function.params.kwonly_params)}
    rebound = _rebound_names(function)
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if not isinstance(node, (cst.If, cst.IfExp)):
            continue
        test = node.test
        while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            test = test.expression
        if isinstance(test, cst.Name) and test.value in names and test.value not in rebound:
            return test.value
    return None


def _default_truth(function: cst.FunctionDef, name: str) -> int:
    """1 or 0 for a parameter whose default is a constant true or false; -1 otherwise."""
    for param in (*function.params.params, *function.params.kwonly_params):
        if param.name.value == name:
            return constant_truth(param.default) if param.default is not None else -1
    return -1


DETACH_ATTRIBUTES = frozenset({"detach", "detach_", "data"})


def _detaches(function: cst.FunctionDef) -> bool:
    """Whether the body cuts something it keeps: stores a detached tensor into an entry or a
    field (`state["h"] = state["h"].detach()`, `s.h = s.h.data`), or detaches in place
    (`t.detach_()`). Reading a cut (`print(h.data)`) keeps nothing."""
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign) and _cut_in(node.value):
            if any(isinstance(t.target, (cst.Subscript, cst.Attribute)) for t in node.targets):
                return True
        elif (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "detach_"
        ):
            return True
    return False


def _cut_in(value: cst.BaseExpression) -> bool:
    return any(
        isinstance(node, cst.Attribute) and node.attr.value in DETACH_ATTRIBUTES
        for node in (value, *descendants([value], stop=NESTED_SCOPES))
    )


def _rebound_names(function: cst.FunctionDef) -> frozenset[str]:
    """Plain names a function's own statements assign to."""
    return node_fact("rebound_names", function, _walk_rebound_names)


def _walk_rebound_names(function: cst.FunctionDef) -> frozenset[str]:
    return frozenset(
        {
            target.target.value
            for node in descendants([function.body], stop=NESTED_SCOPES)
            if isinstance(node, cst.Assign)
            for target in node.targets
            if isinstance(target.target, cst.Name)
        }
    )


def _cut_in_place_on_exit(
    interpreter: UnitInterpreter, function: cst.FunctionDef, param: str
) -> bool:
    """Whether the function leaves the object its caller passed as `param` cut in place on
    every way out, returned or not (`h.detach_(); return h`, `states[k] =
    states[k].detach()` for every `k`): a call as a statement cuts the caller's state. A
    parameter rebound to a cut (`h = h.detach()`) leaves the caller's tensor as it was; a way
    out on which it is known to hold no graph (`if h is None: return None`) does not count
    against the cut."""
    exits = [env for _, env in interpreter.return_envs]
    if interpreter.fell_through:
        exits.append(interpreter.final_env)
    rebound = param in _rebound_names(function)
    cut = False
    for env in exits:
        value = env.get(param)
        if value is None or value.status != Status.FRESH:
            return False
        if value.how in (CUT, LEAF) and (not rebound or _in_place(value.origin)):
            cut = True
        elif not (value.how == RESET and value.origin is None):
            return False  # made anew, or a local cut the caller does not see
    return cut


def _in_place(origin: cst.CSTNode | None) -> bool:
    """`h = h.detach_()`: rebound, but to the caller's own tensor, cut in place."""
    return (
        isinstance(origin, cst.Call)
        and isinstance(origin.func, cst.Attribute)
        and (origin.func.attr.value in ("detach_", "requires_grad_"))
    )


def _all_cut(returns: list[Value]) -> bool:
    """Every return path hands back no graph, and some hands back a cut (`return None if h
    is None else h.detach()`) or a tensor computed without gradients (`with torch.no_grad():
    return h.clone()`). A path the analysis could not model does not undo the cut."""
    return (
        bool(returns)
        and all(v.status in (Status.FRESH, Status.UNKNOWN) for v in returns)
        and any(v.status == Status.FRESH and v.how in (CUT, LEAF, NO_GRAD) for v in returns)
    )


TENSOR_TEST_NAMES = frozenset({"isinstance", "is_tensor"})
# A function handed to a mapper is short: a longer one is not read a second time.
MAP_FUNCTION_STATEMENTS = 6


def _cuts_tensor(
    function: cst.FunctionDef, context: FileContext, class_name: str | None, params: list[str]
) -> bool:
    """Whether the function, applied to a tensor, returns it cut: `return t.detach() if
    torch.is_tensor(t) else t` is the function a `tree_map` is handed, though it hands any
    other value back as it is."""
    required = [p for p in function.params.params if p.default is None]
    if len(required) != 1 + (class_name is not None) or len(function.body.body) > (
        MAP_FUNCTION_STATEMENTS
    ):
        return False  # a function handed to a mapper takes one tensor, and is short
    if not any(
        isinstance(node, cst.Call)
        and (dotted_name(node.func) or "").rsplit(".", 1)[-1] in TENSOR_TEST_NAMES
        and bool(node.args)
        and dotted_name(node.args[0].value) == params[0]
        for node in descendants([function.body], stop=NESTED_SCOPES)
    ):
        return False
    interpreter = UnitInterpreter(function, context, class_name=class_name, summarising=params[:1])
    interpreter.tensor_names = frozenset(params[:1])
    interpreter.run(function.body.body)
    return _all_cut(interpreter.return_values)


def cut_elements(returns: list[Value]) -> tuple[bool, ...]:
    """For a function whose every return is a tuple of one length, whether each element holds
    no graph on any path and is cut on some: `return out, h.detach()` in a `forward` hands its
    caller a state that is already cut (a reset on another path, `return out, None`, keeps
    that). Empty when no element is cut."""
    lengths = {len(v.elements) if v.elements is not None else -1 for v in returns}
    if len(lengths) != 1 or -1 in lengths:
        return ()
    cuts = tuple(
        all(v.elements[i].status == Status.FRESH for v in returns if v.elements)
        and any(v.elements[i].how in (CUT, LEAF) for v in returns if v.elements)
        for i in range(lengths.pop())
    )
    return cuts if any(cuts) else ()


def partly_cut_shape(
    returns: list[Value],
) -> tuple[tuple[int, ...], tuple[bool, ...]] | None:
    """Where the function hands back a tuple some of whose elements are cut and the others
    carry a graph on every return path (see FunctionFacts.returns_partly_cut): the whole
    return value when the others are the caller's own (`return h.detach(), c`), or one of its
    elements when they are the caller's or made in the function (`return out, (h.detach(),
    c)`). None when no return is such, or the return paths disagree."""
    if not returns or returns[0].elements is None:
        return None
    paths: list[tuple[int, ...]] = [()] + [(i,) for i in range(len(returns[0].elements))]
    for path in paths:
        parts = [_part_at(value, path) for value in returns]
        shapes = {len(p.elements) if p is not None and p.elements else -1 for p in parts}
        if len(shapes) != 1 or -1 in shapes:
            continue
        kept_statuses = (Status.INPUT,) if path == () else (Status.INPUT, Status.LIVE)
        mask: list[bool] = []
        for i in range(shapes.pop()):
            elements = [p.elements[i] for p in parts if p is not None and p.elements]
            if all(e.status == Status.FRESH for e in elements) and any(
                e.how in (CUT, LEAF) for e in elements
            ):
                mask.append(True)
            elif all(e.status in kept_statuses and e.elements is None for e in elements):
                mask.append(False)
            else:
                break
        else:
            if any(mask) and not all(mask):
                return path, tuple(mask)
    return None


def _part_at(value: Value, path: tuple[int, ...]) -> Value | None:
    for index in path:
        if value.elements is None or index >= len(value.elements):
            return None
        value = value.elements[index]
    return value


def summarise_class(node: cst.ClassDef, context: FileContext, facts: ModuleFacts) -> None:
    name = node.name.value
    for member in node.body.body:
        if not isinstance(member, cst.FunctionDef) or _autograd_member(member):
            continue
        if member.name.value == "detach" and _detaches_in_place(member):
            facts.inplace_detach_classes.add(name)
        if member.name.value == "forward":
            cut = _forward_cut_positions(member, context, name)
            if cut:
                facts.forward_cuts[name] = cut
            resets = _forward_reset_positions(member)
            if resets:
                facts.forward_resets[name] = resets
            carried = _carried_attributes(member, context, name)
            if carried:
                facts.stateful_classes[name] = carried
        elif member.name.value != "__init__" and _steps_own_state(member):
            carried = _carried_attributes(member, context, name)
            if carried:
                facts.carrying_methods.setdefault(name, {})[member.name.value] = carried
    if name in facts.stateful_classes:
        for member in node.body.body:
            if isinstance(member, cst.FunctionDef) and member.name.value != "forward":
                touched = _attributes_set_fresh(
                    member, context, name, frozenset(facts.stateful_classes[name])
                )
                if touched:
                    facts.state_methods.setdefault(name, {})[member.name.value] = touched


def _steps_own_state(method: cst.FunctionDef) -> bool:
    """Cheap syntax first: a method that writes an attribute back from a call it passes it to
    (`out, self.h = self.rnn(x, self.h)`) and runs no backward of its own (one that does is
    checked where it is, between its own calls: `keeps_state_between_calls`)."""
    writes_back = False
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Call) and method_name(node) == "backward":
            return False
        if isinstance(node, cst.Assign) and not writes_back:
            writes_back = writes_back_attribute(node)
    return writes_back


def _forward_reset_positions(forward: cst.FunctionDef) -> frozenset[int]:
    """`hidden = self.init_hidden(x.size(1))` as a plain statement of `forward`: the state a
    caller passes in is thrown away. A reset under `if hidden is None:` is the usual default
    and is not counted, nor is rebinding an argument that was read before (`x, new_h =
    rnn(x, hidden[l])` ... `hidden = new_hidden`): the caller's state was used."""
    params = parameter_names(forward, skip_self=True)
    reset: set[int] = set()
    used: set[str] = set()
    for statement in forward.body.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else ():
            if not isinstance(small, cst.Assign):
                continue
            bound = {n for t in small.targets for n in target_names(t.target)}
            read = _names_read(small.value)
            for position, param in enumerate(params):
                if param in bound and param not in read and param not in used:
                    reset.add(position)
        used |= _names_read(statement)
    return frozenset(reset)


def _names_read(node: cst.CSTNode) -> set[str]:
    return {n.value for n in descendants([node]) if isinstance(n, cst.Name)}


def _carried_attributes(
    forward: cst.FunctionDef, context: FileContext, class_name: str
) -> dict[str, str]:
    """`out, self.hidden = self.lstm(x, self.hidden)`: attributes a forward feeds back into a
    recurrent call, and whether it cuts or resets them first."""
    first = UnitInterpreter(forward, context, class_name=class_name)
    events = first.run(forward.body.body)
    attributes = {
        state
        for call in events.recurrent_calls
        for state in call.states
        if state.startswith("self.")
    }
    if not attributes:
        return {}
    seeded = UnitInterpreter(
        forward, context, class_name=class_name, summarising=tuple(sorted(attributes))
    )
    # Known before the first recurrent call, so that `self.init_state(...)` ahead of it counts.
    seeded.attribute_state_cache = (0, frozenset(attributes))
    events = seeded.run(forward.body.body)
    result: dict[str, str] = {}
    left = _left_cut(seeded, attributes)
    for read in events.reads.values():
        if read.name not in attributes:
            continue
        value = read.value
        fresh_on_entry = value.status == Status.FRESH and value.how in (CUT, LEAF, RESET)
        how = value.how if fresh_on_entry else CUT if read.name in left else "carried"
        result[read.name.removeprefix("self.")] = how
    return result


def _left_cut(forward: UnitInterpreter, attributes: set[str]) -> set[str]:
    """The attributes `forward` leaves cut on every way out (`self.h = h.detach()` after
    the call): the next call reads them cut, as if it cut them first."""
    exits = [env for _, env in forward.return_envs]
    if forward.fell_through:
        exits.append(forward.final_env)
    return {
        name
        for name in attributes
        if exits
        and all(
            name in env and env[name].status == Status.FRESH and env[name].how in (CUT, LEAF)
            for env in exits
        )
    }


def _attributes_set_fresh(
    method: cst.FunctionDef, context: FileContext, class_name: str, carried: frozenset[str]
) -> dict[str, str]:
    """Attributes a method leaves cut or re-initialised (`self.hidden = None`), and those it
    sets to anything else (a state it steps itself): UNKNOWN to its callers. A carried
    attribute of which it cuts some parts and writes the others back as they were
    (`self.hidden = (self.hidden[0].detach(), self.hidden[1])`) is PARTIAL_CUT; one it only
    copies (`self.states = [s.clone() for s in self.states]`, which keeps the graph) is not
    touched."""
    interpreter = UnitInterpreter(method, context, class_name=class_name)
    interpreter.run(method.body.body)
    touched = {
        name.removeprefix("self."): value.how
        for name, value in interpreter.final_env.items()
        if name.startswith("self.") and value.status == Status.FRESH and value.origin is not None
    }
    for name, value in interpreter.final_env.items():
        if name.startswith("self.") and value.has_graph:
            touched.setdefault(name.removeprefix("self."), UNKNOWN)
    made = [a for a in carried if touched.get(a) in (CUT, LEAF, RESET)]
    if made:
        # Read again with the attributes as the caller left them: a part written back
        # unchanged, or a copy of the whole, is then told apart from what the method made.
        seeded = UnitInterpreter(method, context, class_name=class_name)
        seeded.run(method.body.body, {f"self.{a}": Value(Status.INPUT) for a in made})
        exits = [env for _, env in seeded.return_envs]
        if seeded.fell_through:
            exits.append(seeded.final_env)
        for attribute in made:
            values = [env.get(f"self.{attribute}") for env in exits]
            if not values:
                continue
            if touched[attribute] != RESET and all(partly_cut(v) for v in values):
                touched[attribute] = PARTIAL_CUT
            elif _copies_only(interpreter.final_env[f"self.{attribute}"].origin) and all(
                _copied(v) for v in values
            ):
                del touched[attribute]
    return touched


# Calls that copy a tensor or a list of them and keep the graph.
COPYING_METHODS = frozenset({"clone", "contiguous", "to", "cuda", "cpu", "float", "double"})
COPYING_FUNCTIONS = frozenset({"list", "tuple"})


def _copies_only(origin: cst.CSTNode | None) -> bool:
    """Whether an expression calls nothing but copies (`[s.clone() for s in self.states]`,
    `list(self.states)`): a function of unknown body (an imported `detach_all`) may cut."""
    if not isinstance(origin, cst.BaseExpression):
        return False
    for node in (origin, *descendants([origin], stop=NESTED_SCOPES)):
        if not isinstance(node, cst.Call):
            continue
        if isinstance(node.func, cst.Attribute):
            if node.func.attr.value not in COPYING_METHODS:
                return False
        elif dotted_name(node.func) not in COPYING_FUNCTIONS:
            return False
    return True


def _copied(value: Value | None) -> bool:
    """A value made from the caller's own by a copy that keeps its graph on every path
    (`[s.clone() for s in self.states]`): INPUT, with no cut or reset among its sources."""
    return (
        value is not None
        and value.status == Status.INPUT
        and not any(how in (CUT, LEAF, RESET, NO_GRAD) for _, how in value.all_sources())
        and not any(e.status == Status.FRESH for e in value.elements or ())
    )


def _detaches_in_place(method: cst.FunctionDef) -> bool:
    """A `detach(self)` that returns nothing (or self) and rebinds or detaches attributes."""
    returns_value = False
    mutates = False
    stack: list[cst.CSTNode] = [method.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Return) and node.value is not None:
            returns_value = returns_value or dotted_name(node.value) != "self"
        if isinstance(node, cst.Assign):
            mutates = mutates or any(
                (dotted_name(t.target) or "").startswith("self.") for t in node.targets
            )
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            mutates = mutates or node.func.attr.value == "detach_"
        stack.extend(children(node))
    return mutates and not returns_value


def _forward_cut_positions(
    method: cst.FunctionDef, context: FileContext, class_name: str
) -> frozenset[int]:
    """Positions of `forward` parameters that it cuts (`hidden = hidden.detach()`,
    `hidden.detach_()`) before using them."""
    params = parameter_names(method, skip_self=True)
    interpreter = UnitInterpreter(method, context, class_name=class_name)
    cut: set[int] = set()
    for node in descendants([method.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Assign):
            bound = {n for t in node.targets for n in target_names(t.target)}
            for position, param in enumerate(params):
                if param in bound:
                    value = interpreter.evaluate(node.value, {param: Value(Status.INPUT)})
                    if value.status == Status.FRESH and value.how in (CUT, LEAF):
                        cut.add(position)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            receiver = dotted_name(node.func.value)
            if node.func.attr.value == "detach_" and receiver in params:
                cut.add(params.index(receiver))
    return frozenset(cut)


# What the context hands the interpreter and the attribute analysis (see Interpretation).
INTERPRETATION = Interpretation(UnitInterpreter, summarise_function)
