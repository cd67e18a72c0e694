"""State kept on attributes: `self.hidden`, `net.hidden`, `self.decoder.state`, `model.state`.

The interpreter keys values by dotted names, so inside one unit an attribute path is followed
like a local. Two things set attributes apart:

- A call can rebind them (`self.reset_hidden()`, `model.detach_state()`, `repackage(model)`).
  A call on the object that holds a state (or that takes it as an argument) is followed into
  the method's or function's body when the module defines it, and what the body leaves cut or
  re-initialised is applied at the call. A call made for its effect alone that cannot be
  followed makes the state *unknown*: a fresh value no rule reports on.
- They outlive the call that sets them. A method that keeps `self.hidden` and runs a backward
  (a trainer's `train_step(x, y)`, Lightning's `training_step`, whose backward the framework
  runs on the loss it returns) is one pass of a loop its caller runs, with the `self.*` states
  of its recurrent calls as what that loop carries. Whatever else in the file writes such an
  attribute decides what happens between two calls: a Lightning hook that runs once per batch
  cuts or resets it, one that runs per epoch does not, and anything else is unknown.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import libcst as cst

from tbptt_lint.analysis.candidates import NESTED_SCOPES, _is_backward_call
from tbptt_lint.analysis.chunks import top_level_blocks
from tbptt_lint.analysis.context import Construction, FileContext
from tbptt_lint.analysis.events import UnitEvents
from tbptt_lint.analysis.index import ModuleSummary, ProjectIndex
from tbptt_lint.analysis.names import dotted_name, target_names
from tbptt_lint.analysis.prefilter import STATE_ON_SELF as ATTRIBUTE_STATE
from tbptt_lint.analysis.prefilter import hands_loss_to_lightning
from tbptt_lint.analysis.values import (
    CUT,
    LEAF,
    PARTIAL_CUT,
    RESET,
    Env,
    Status,
    Value,
    after_partial_cut,
    fresh,
    join_envs,
    partly_cut,
    with_carried,
)
from tbptt_lint.analysis.walk import descendants

if TYPE_CHECKING:
    from tbptt_lint.analysis.interpreter import UnitInterpreter

# How a FRESH value is known when a call the analysis cannot follow may have rebound it. Rules
# read it as neither a cut nor a reset: nothing is reported on it.
UNKNOWN = "unknown"
# Bases whose methods never rebind a user's attributes (`self.log(...)`, `model.train()`).
FRAMEWORK_HEADS = ("torch.", "pytorch_lightning.", "lightning.")
# nn.Module's (and LightningModule's) own methods: called on an object of unknown class, they
# still leave its attributes alone.
MODULE_METHODS = frozenset(
    {
        "train",
        "eval",
        "zero_grad",
        "to",
        "cuda",
        "cpu",
        "float",
        "double",
        "half",
        "bfloat16",
        "requires_grad_",
        "parameters",
        "named_parameters",
        "buffers",
        "named_buffers",
        "children",
        "named_children",
        "modules",
        "named_modules",
        "state_dict",
        "register_buffer",
        "log",
        "log_dict",
        "print",
        "manual_backward",
        "optimizers",
        "lr_schedulers",
        "toggle_optimizer",
        "untoggle_optimizer",
        "clip_gradients",
    }
)
# Callees that take an object without rebinding its attributes.
PLAIN_FUNCTIONS = frozenset({"print", "len", "isinstance", "id", "type", "str", "repr", "hasattr"})
# Lightning hooks that run once per training batch, and hooks that run less often (or only
# around evaluation) and so leave a state carried between most batches as it is.
PER_BATCH_HOOKS = frozenset(
    {
        "on_train_batch_start",
        "on_train_batch_end",
        "on_before_batch_transfer",
        "on_after_batch_transfer",
        "transfer_batch_to_device",
        "on_before_backward",
        "on_after_backward",
        "backward",
        "on_before_optimizer_step",
        "optimizer_step",
        "on_before_zero_grad",
        "optimizer_zero_grad",
    }
)
RARER_HOOKS = frozenset(
    {
        "__init__",
        "setup",
        "teardown",
        "prepare_data",
        "configure_optimizers",
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "on_fit_start",
        "on_fit_end",
        "on_train_start",
        "on_train_end",
        "on_train_epoch_start",
        "on_train_epoch_end",
        "on_epoch_start",
        "on_epoch_end",
        "on_validation_start",
        "on_validation_end",
        "on_validation_epoch_start",
        "on_validation_epoch_end",
        "on_validation_batch_start",
        "on_validation_batch_end",
        "validation_step",
        "test_step",
        "predict_step",
        "on_save_checkpoint",
        "on_load_checkpoint",
    }
)
LIGHTNING_HEADS = ("pytorch_lightning.", "lightning.")
MAX_CALL_PASSES = 4


def index_definitions(module: cst.Module, context: FileContext) -> None:
    """The module's classes and top-level functions, for following calls into them."""
    for statement in module.body:
        if isinstance(statement, cst.ClassDef):
            context.class_defs.setdefault(statement.name.value, statement)
        elif isinstance(statement, cst.FunctionDef):
            context.function_defs.setdefault(statement.name.value, statement)


# ------------------------------------------------------------------ calls on state owners
def attribute_states(interpreter: UnitInterpreter) -> frozenset[str]:
    """Attribute paths that the unit's recurrent calls read so far (`self.hidden`)."""
    calls = interpreter.events.recurrent_calls
    count, states = interpreter.attribute_state_cache
    if count != len(calls):
        states = frozenset(state for call in calls for state in call.states if "." in state)
        interpreter.attribute_state_cache = (len(calls), states)
    return states


def apply_call(interpreter: UnitInterpreter, call: cst.Call, env: Env, statement: bool) -> None:
    """What a call does to the attribute states it can reach: its receiver's (`model.reset()`)
    and its arguments' (`reset(model)`). `statement`: the call's result is not used, so it is
    made for its effects, and one that cannot be followed makes those states unknown."""
    receiver = interpreter.effects_receiver
    states = attribute_states(interpreter)
    if not states and receiver is None:
        return
    if isinstance(call.func, cst.Attribute):
        owner = dotted_name(call.func.value)
        if owner is not None and _reaches(interpreter, owner, states, receiver):
            effects = method_effects(interpreter, owner, call.func.attr.value)
            _apply(interpreter.events, env, owner, states, receiver, effects, call, statement)
    for position, arg in enumerate(call.args):
        owner = dotted_name(arg.value)
        if owner is None or not _reaches(interpreter, owner, states, receiver):
            continue
        effects = argument_effects(interpreter, call, position, arg)
        _apply(interpreter.events, env, owner, states, receiver, effects, call, statement)


NUMBER_METHODS = frozenset({"item", "tolist"})
NUMBER_FUNCTIONS = frozenset({"float", "int", "len", "round"})


def takes_only_numbers(call: cst.Call, carried: Iterable[cst.BaseExpression]) -> bool:
    """`self.avg = self.smooth(self.avg, loss.item())`: besides the state, only Python numbers
    go in. A recurrent step takes a tensor input; this keeps a running statistic."""
    passed = [arg.value for arg in call.args if not any(arg.value is c for c in carried)]
    return bool(passed) and all(_is_number(value) for value in passed)


def _is_number(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.UnaryOperation):
        return _is_number(node.expression)
    if isinstance(node, cst.Call):
        if isinstance(node.func, cst.Attribute):
            return node.func.attr.value in NUMBER_METHODS
        return dotted_name(node.func) in NUMBER_FUNCTIONS
    return False


def _reaches(
    interpreter: UnitInterpreter, owner: str, states: frozenset[str], receiver: str | None
) -> bool:
    """Whether a call on (or with) `owner` can rebind a tracked state: one under it, or, while
    a method is summarised, its own object or an object of a known class held there."""
    if receiver is not None:
        if owner == receiver:
            return True
        if owner.startswith(receiver + "."):
            return interpreter.context.class_of(owner, interpreter.class_name) is not None
    prefix = owner + "."
    return any(state.startswith(prefix) for state in states)


def _within(owner: str, receiver: str | None) -> bool:
    return receiver is not None and (owner == receiver or owner.startswith(receiver + "."))


def _apply(
    events: UnitEvents,
    env: Env,
    owner: str,
    states: frozenset[str],
    receiver: str | None,
    effects: dict[str, str] | None,
    call: cst.Call,
    statement: bool,
) -> None:
    if _within(owner, receiver):
        # Summarising a method: record the effects on its own object as they are.
        if effects is None:
            if statement:
                env[f"{owner}.*"] = fresh(UNKNOWN, call)
            return
        for path, how in effects.items():
            env[f"{owner}.{path}"] = fresh(how, call)
        return
    prefix = owner + "."
    for state in states:
        if not state.startswith(prefix):
            continue
        how = UNKNOWN if effects is None else effect_on(state[len(prefix) :], effects)  # type: ignore[assignment]
        if how is None or (effects is None and not statement):
            continue
        previous = env.get(state)
        if how == PARTIAL_CUT:
            updated = after_partial_cut(previous)
            if updated is not None:
                env[state] = updated
            continue
        made = fresh(how, call)
        if how in (CUT, LEAF) and previous is not None:
            # A cut carries the state on: it comes from the same passes as what it cut.
            made = with_carried(made, previous.carried)
        env[state] = made
        if how == RESET:
            events.attribute_resets.add((id(call), state))


def effect_on(path: str, effects: dict[str, str]) -> str | None:
    """How a call whose effects are `effects` leaves the attribute `path` of its object:
    directly, through an object on the way that it rebinds, or unknown."""
    if path in effects:
        return effects[path]
    if "*" in effects:
        return UNKNOWN
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:end])
        if head in effects:
            return effects[head]
        if f"{head}.*" in effects:
            return UNKNOWN
    return None


def method_effects(interpreter: UnitInterpreter, owner: str, method: str) -> dict[str, str] | None:
    """Attribute path -> how `owner.method(...)` leaves it; {} when it touches none, None when
    the method cannot be followed."""
    context = interpreter.context
    class_name = context.class_of(owner, interpreter.class_name)
    if class_name is None:
        return {} if method in MODULE_METHODS else None
    found = find_method(context, class_name, method)
    if found is None:
        if class_name in context.stateful_classes:
            # A class of another file whose methods were summarised: those not listed there
            # leave its state alone.
            return dict(context.state_methods.get(class_name, {}).get(method, {}))
        return {} if method in MODULE_METHODS else None
    if found == ():
        return {}
    function, defining = found  # type: ignore[misc]
    return effects_of(context, function, defining, "self")


def find_method(
    context: FileContext, class_name: str, method: str
) -> tuple[cst.FunctionDef, str] | tuple[()] | None:
    """The method and the class defining it, searched through bases of the same module; ()
    when it can only come from a framework base (or nowhere), None when a base is unknown."""
    todo = [class_name]
    seen: set[str] = set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        node = context.class_defs.get(name)
        if node is None:
            return None
        for member in node.body.body:
            if isinstance(member, cst.FunctionDef) and member.name.value == method:
                return member, name
        for base in node.bases:
            dotted = dotted_name(base.value)
            qualified = context.imports.qualify(dotted) if dotted else None
            if qualified is None:
                return None
            if qualified in context.class_defs:
                todo.append(qualified)
            elif qualified != "object" and not qualified.startswith(FRAMEWORK_HEADS):
                return None
    return ()


def argument_effects(
    interpreter: UnitInterpreter, call: cst.Call, position: int, arg: cst.Arg
) -> dict[str, str] | None:
    """How `f(..., obj, ...)` leaves the attributes of `obj`, for a function of the module."""
    callee = dotted_name(call.func)
    if callee is None:
        return None
    function = interpreter.context.function_defs.get(callee)
    if function is not None:
        params = [p.name.value for p in function.params.params]
        name = arg.keyword.value if arg.keyword is not None else None
        if name is None and position < len(params):
            name = params[position]
        if name is None or name not in params:
            return None
        return effects_of(interpreter.context, function, None, name)
    qualified = interpreter.context.imports.qualify(callee) or callee
    if callee in PLAIN_FUNCTIONS or qualified.startswith("torch."):
        return {}
    return None


def effects_of(
    context: FileContext, function: cst.FunctionDef, class_name: str | None, receiver: str
) -> dict[str, str] | None:
    """What a function leaves on the attributes of `receiver` (`self`, or a parameter):
    path -> how, UNKNOWN for anything else it binds there; `*` for a call it cannot follow."""
    key = (class_name or "", f"{function.name.value}:{receiver}")
    if key in context.attribute_effects:
        return context.attribute_effects[key]
    if context.interpretation is None:
        return None
    context.attribute_effects[key] = None  # a call back into itself stays unknown
    # The object starts as the caller's: a value read from it and written back unchanged is
    # INPUT, which leaves the caller's value as it was.
    interpreter = context.interpretation.interpreter(
        function, context, class_name=class_name, summarising=(receiver,)
    )
    interpreter.effects_receiver = receiver
    interpreter.run(function.body.body)
    prefix = receiver + "."
    effects: dict[str, str] = {}
    for name, value in end_env(interpreter).items():
        if name.startswith(prefix) and partly_cut(value):
            effects[name[len(prefix) :]] = PARTIAL_CUT
        elif name.startswith(prefix) and value.status != Status.INPUT:
            settled = value.status == Status.FRESH and value.how
            effects[name[len(prefix) :]] = value.how if settled else UNKNOWN
    context.attribute_effects[key] = effects
    return effects


def end_env(interpreter: UnitInterpreter, backward_at_return: bool = False) -> Env:
    """The values when the unit's body is left, by falling off its end or by a return. With
    `backward_at_return`, the framework runs a backward through what each return hands it."""
    merged: Env | None = dict(interpreter.final_env) if interpreter.fell_through else None
    for node, env in interpreter.return_envs:
        if backward_at_return:
            env = dict(env)
            interpreter.apply_backward(node, env)  # type: ignore[arg-type]
        merged = join_envs(merged, env)
    return merged or {}


# ------------------------------------------------------------------ which blocks to parse
# `out, net.hidden = net.rnn(x, net.hidden)`: an attribute fed back, beside an input, into the
# call that sets it.
ANY_ATTRIBUTE_STATE = re.compile(
    r"\b(\w+(?:\.\w+)*)\.(\w+)\s*=\s*[\w.\[\]]+\("
    r"(?:[^\n]*,[^\n]*\b\1\.\2\b|[^\n]*\b\1\.\2\b[^\n]*,)"
)
# `self.states[i] = layer(x, self.states[i])`: a list of per-layer states kept on an object.
INDEXED_ATTRIBUTE_STATE = re.compile(
    r"\b(\w+(?:\.\w+)*)\.(\w+)\[[^\]\n]*\]\s*=\s*[\w.\[\]]+\([^\n]*\b\1\.\2\["
)
DEFINED = re.compile(r"(?m)^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)")


def keep_attribute_writers(
    source: str, wanted: Callable[[str], bool], stateful_names: frozenset[str] = frozenset()
) -> Callable[[str], bool]:
    """`wanted`, widened to what the analysis follows into when a state kept on an attribute
    is cut, reset or kept between calls: blocks and methods that write such an attribute or
    that are called as statements on its owner (or with it), and, in a file that uses a class
    of the run whose objects keep state (`stateful_names`), `__init__` methods and code that
    builds such an object. Only states in the blocks `wanted` already keeps count."""
    states = _kept_attribute_states(source, wanted)
    builders = {name for name in stateful_names if name in source}
    if not states and not builders:
        return wanted
    patterns: list[re.Pattern[str]] = []
    if states:
        owners = sorted({prefix for owner, _ in states for prefix in _prefixes(owner)})
        alternatives = "|".join(re.escape(owner) for owner in owners)
        called = set(re.findall(rf"(?m)^[ \t]*(?:{alternatives})\.(\w+)\(", source))
        called |= set(re.findall(rf"(?m)^[ \t]*(\w+)\((?:[^\n]*\W)?(?:{alternatives})\b", source))
        if hands_loss_to_lightning(source):
            # The framework calls them: the step (and runs its backward), and the loader.
            called |= {"training_step", "train_dataloader"}
        called.add("__init__")  # where loaders and modules are built
        bases = set(BASE_NAMES.findall(source)) & set(CLASS_LINE.findall(source))
        if bases:
            # Base classes of the module, for the methods and hooks objects inherit.
            patterns.append(re.compile(rf"(?m)^class[ \t]+(?:{'|'.join(sorted(bases))})\b"))
        patterns.append(_write_pattern("|".join(sorted({re.escape(a) for _, a in states}))))
        if called:
            patterns.append(re.compile(rf"(?m)^[ \t]*def[ \t]+(?:{'|'.join(sorted(called))})\b"))
    if builders:
        builders |= set(CLASS_LINE.findall(source))
        # And the forward of a module that holds such an object, and evaluation loops, which
        # must not start from the state training left.
        patterns.append(
            re.compile(
                rf"\b(?:{'|'.join(sorted(builders))})\("
                r"|def (?:__init__|forward)\b|no_grad|inference_mode"
            )
        )

    def widened(text: str) -> bool:
        return wanted(text) or any(pattern.search(text) for pattern in patterns)

    return widened


# `out, h = net.rnn(x, net.hidden)` ... `net.hidden = h.detach()`: an attribute read by a call
# that returns a tuple, and set from one of its targets, is state too.
TUPLE_FROM_CALL = re.compile(r"(?m)^[ \t]*(\w+[ \t]*,[\w, \t()]*)=[ \t]*[\w.\[\]]+\(([^\n]*)")
ATTRIBUTE_SET = re.compile(r"(?m)^[ \t]*((?:\w+\.)+\w+)[ \t]*=(?!=)([^\n]*)")
WORD = re.compile(r"\w+")


def _handed_back(source: str) -> list[tuple[int, str, str]]:
    """(position, owner, attribute) of the calls whose tuple result hands an attribute they
    read back to it through a local, as `UnitScan.stored_back` reads it."""
    calls = list(TUPLE_FROM_CALL.finditer(source))
    if not calls:
        return []
    words_set: dict[str, set[str]] = {}
    for write in ATTRIBUTE_SET.finditer(source):
        words_set.setdefault(write.group(1), set()).update(WORD.findall(write.group(2)))
    found = []
    for call in calls:
        arguments = call.group(2)
        targets = set(WORD.findall(call.group(1)))
        for holder, words in words_set.items():
            if holder in arguments and targets & words and _reads(arguments, holder):
                owner, _, attribute = holder.rpartition(".")
                found.append((call.start(), owner, attribute))
    return found


def _reads(text: str, holder: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(holder)}(?![\w(])", text) is not None


def _kept_attribute_states(source: str, wanted: Callable[[str], bool]) -> set[tuple[str, str]]:
    """(owner, attribute) of the attribute states in the module's statements and in the
    blocks `wanted` keeps."""
    matches = [(m.start(), m.group(1), m.group(2)) for m in ANY_ATTRIBUTE_STATE.finditer(source)]
    if "]" in source:
        matches += [
            (m.start(), m.group(1), m.group(2)) for m in INDEXED_ATTRIBUTE_STATE.finditer(source)
        ]
    matches += _handed_back(source)
    if not matches:
        return set()
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    found: set[tuple[str, str]] = set()
    blocks = list(top_level_blocks(source))  # in source order, without overlaps
    block_starts = [starts[b.first_line] for b in blocks]
    wanted_blocks: dict[int, bool] = {}  # `wanted` reads a whole block: ask once per block
    for start, owner, attribute in matches:
        at = bisect_right(block_starts, start) - 1
        if at < 0 or start >= starts[blocks[at].end_line]:
            found.add((owner, attribute))  # a module-level statement
            continue
        if at not in wanted_blocks:
            wanted_blocks[at] = wanted(blocks[at].text)
        if wanted_blocks[at]:
            found.add((owner, attribute))
    return found


def _prefixes(owner: str) -> list[str]:
    parts = owner.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


# ------------------------------------------------------------------ state kept between calls


def keeps_state_between_calls(
    function: cst.CSTNode,
    body: Sequence[cst.CSTNode],
    context: FileContext,
    helpers: set[str],
    class_name: str,
) -> bool:
    """A method whose body may keep state on its object from one call to the next and runs a
    backward, or hands its loss to Lightning: cheap syntax only, the interpreter decides."""
    if not isinstance(function, cst.FunctionDef):
        return False
    backward = automatic_lightning_step(function, context)
    keeps = False
    for node in descendants(body, stop=NESTED_SCOPES):
        if isinstance(node, cst.Call):
            backward = backward or _is_backward_call(node, context, helpers)
            keeps = keeps or _calls_stateful_module(node, context, class_name)
        elif isinstance(node, cst.Assign) and not keeps:
            keeps = writes_back_attribute(node)
        if backward and keeps:
            return True
    return False


NO_GRAD_NAMES = frozenset(
    {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "no_grad", "inference_mode"}
)


def evaluates_kept_state(
    function: cst.CSTNode, body: Sequence[cst.CSTNode], context: FileContext, class_name: str | None
) -> bool:
    """A function that loops without gradients over a model that keeps state on itself (an
    evaluation loop), for TBP011's check that evaluation does not start from the state training
    left behind: cheap syntax only."""
    if not isinstance(function, cst.FunctionDef):
        return False
    no_grad = runs_without_gradients(function, context)
    loop = calls = False
    for node in descendants(body, stop=NESTED_SCOPES):
        if isinstance(node, cst.For):
            loop = True
        elif isinstance(node, cst.With):
            no_grad = no_grad or any(
                context.qualify(item.item.func if isinstance(item.item, cst.Call) else item.item)
                in NO_GRAD_NAMES
                for item in node.items
            )
        elif isinstance(node, cst.Call) and not calls and context.stateful_classes:
            callee = dotted_name(node.func)
            calls = context.class_of(callee or "", class_name) in context.stateful_classes
        elif isinstance(node, cst.Assign) and not calls:
            calls = writes_back_attribute(node, "")
        if loop and calls and no_grad:
            return True
    return False


def runs_without_gradients(function: cst.FunctionDef, context: FileContext) -> bool:
    """`@torch.no_grad()` (or `@torch.inference_mode()`) on the function."""
    for decorator in function.decorators:
        node = decorator.decorator
        if isinstance(node, cst.Call):
            node = node.func
        if context.qualify(node) in NO_GRAD_NAMES:
            return True
    return False


def writes_back_attribute(node: cst.Assign, owner: str = "self.") -> bool:
    """`out, self.hidden = self.lstm(x, self.hidden)` (an attribute of any object when
    `owner` is empty)."""
    if not isinstance(node.value, cst.Call):
        return False
    written = {
        dotted_name(element.value) if isinstance(target.target, cst.Tuple) else None
        for target in node.targets
        for element in (target.target.elements if isinstance(target.target, cst.Tuple) else ())
    }
    written |= {dotted_name(target.target) for target in node.targets}
    written = {name for name in written if name and "." in name and name.startswith(owner)}
    if not written:
        return False
    return any(
        isinstance(n, cst.Attribute) and dotted_name(n) in written
        for n in descendants(list(node.value.args))
    )


def _calls_stateful_module(call: cst.Call, context: FileContext, class_name: str) -> bool:
    """`self(x)` or `self.model(x)` on a class whose forward keeps state on itself."""
    if not context.stateful_classes:
        return False
    callee = dotted_name(call.func)
    if callee is None or not (callee == "self" or callee.startswith("self.")):
        return False
    return context.class_of(callee, class_name) in context.stateful_classes


def automatic_lightning_step(function: cst.FunctionDef, context: FileContext) -> bool:
    """Lightning's `training_step` under automatic optimization: the framework runs the
    backward through the loss it returns, after the call."""
    if function.name.value != "training_step":
        return False
    owner = next(
        (c for c in context.class_defs.values() if function in c.body.body),
        None,
    )
    if owner is None or not is_lightning_module(context, owner):
        return False
    return not context.manual_optimization


def is_lightning_module(context: FileContext, node: cst.ClassDef) -> bool:
    """Whether the class derives from Lightning's `LightningModule`, directly or through
    classes of the same module."""
    todo, seen = [node], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for base in current.bases:
            qualified = context.imports.qualify(dotted_name(base.value)) or ""
            if qualified.endswith("LightningModule") and qualified.startswith(LIGHTNING_HEADS):
                return True
            if qualified in context.class_defs:
                todo.append(context.class_defs[qualified])
    return False


def carried_between_calls(interpreter: UnitInterpreter) -> tuple[str, ...]:
    """`self.*` states that recurrent calls of a method read outside any loop that runs a
    backward: they stay on the object until the method's next call."""
    events = interpreter.events
    found: list[str] = []
    for call in events.recurrent_calls:
        if call.no_grad or any(loop in events.loops_with_backward for loop in call.loops):
            continue
        found += [s for s in call.states if s.startswith("self.") and s not in found]
    return tuple(found)


def repeat_between_calls(
    interpreter: UnitInterpreter, body: Sequence[cst.CSTNode], source: str
) -> UnitEvents:
    """Run a method's body again from the state its last call left on the object, until the
    carried attribute values settle, as a loop's body is."""
    events = interpreter.events
    if interpreter.class_name is None or not isinstance(interpreter.unit, cst.FunctionDef):
        return events
    carried = carried_between_calls(interpreter)
    if not carried:
        return events
    between = between_calls(interpreter, carried, source)
    carried = tuple(state for state in carried if between.get(state, ()) is not None)
    if not carried:
        return events
    automatic = not events.backwards and automatic_lightning_step(
        interpreter.unit, interpreter.context
    )
    if not events.backwards and not automatic:
        return events
    events.carried_between_calls = carried
    head: Env = {}
    for _ in range(MAX_CALL_PASSES):
        end = end_env(interpreter, backward_at_return=automatic)
        kept: Env = {}
        for state in carried:
            value = between.get(state) or end.get(state)
            if value is not None:
                kept[state] = value
        new_head = join_envs(head, kept) or {}
        if new_head == head:
            break
        head = new_head
        interpreter.run(body, head)
    return events


def between_calls(
    interpreter: UnitInterpreter, carried: Iterable[str], source: str
) -> dict[str, Value | None]:
    """What happens to each carried `self.*` state between two calls of the method: a cut or
    reset by a Lightning hook that runs every batch (a fresh value), nothing (absent), or a
    write elsewhere that cannot be placed (None: unknown)."""
    context = interpreter.context
    unit = interpreter.unit
    assert isinstance(unit, cst.FunctionDef)
    owner = context.class_defs.get(interpreter.class_name or "")
    lightning = owner is not None and is_lightning_module(context, owner)
    own_classes = _same_module_ancestry(context, interpreter.class_name or "")
    if find_method(context, interpreter.class_name or "", "") is None:
        # A base class of another module (a mixin, a project's base trainer) may cut or
        # reset the state in a hook of its own.
        return dict.fromkeys(carried)
    own_text = _code(unit)
    result: dict[str, Value | None] = {}
    for state in carried:
        path = state.removeprefix("self.")
        pattern = _write_pattern(re.escape(path.rsplit(".", 1)[-1]))
        unplaced = len(pattern.findall(source)) - len(pattern.findall(own_text))
        value: Value | None = None
        known = True
        # The object that holds the attribute: `self`, or `self.model` for `self.model.state`.
        holder, _, attribute = f"self.{path}".rpartition(".")
        if holder == "self":
            holder_classes, holder_lightning = own_classes, lightning
        else:
            held = context.class_of(holder, interpreter.class_name)
            holder_classes, holder_lightning = _same_module_ancestry(context, held or ""), False
        for class_name, node in context.class_defs.items():
            for member in node.body.body:
                if not isinstance(member, cst.FunctionDef) or member is unit:
                    continue
                writes = len(pattern.findall(_code(member)))
                if not writes:
                    continue
                unplaced -= writes
                effect = _hook_effect(
                    context,
                    member,
                    class_name if class_name in holder_classes else None,
                    holder_lightning,
                    attribute,
                    (holder, unit.name.value, own_text, source),
                )
                if effect is None:
                    known = False
                elif isinstance(effect, Value):
                    value = effect
        if not known or unplaced > 0:
            result[state] = None
        elif value is not None:
            result[state] = value
    return result


def _same_module_ancestry(context: FileContext, class_name: str) -> set[str]:
    """The class and its bases defined in the same module."""
    found: set[str] = set()
    todo = [class_name]
    while todo:
        name = todo.pop()
        node = context.class_defs.get(name)
        if node is None or name in found:
            continue
        found.add(name)
        for base in node.bases:
            qualified = context.imports.qualify(dotted_name(base.value))
            if qualified in context.class_defs:
                todo.append(qualified)
    return found


def _called_in(holder: str, method: str, text: str) -> bool:
    """Whether `text` calls `method` on `holder` (`forward` through `holder(...)`)."""
    holder = re.escape(holder)
    if method == "forward" and re.search(rf"\b{holder}\(", text):
        return True
    return bool(re.search(rf"\b{holder}\.{re.escape(method)}\(", text))


def _hook_effect(
    context: FileContext,
    member: cst.FunctionDef,
    holder_class: str | None,
    lightning: bool,
    attribute: str,
    texts: tuple[str, str, str, str],
) -> Value | bool | None:
    """What a method that writes the attribute does between two calls of the analysed one: a
    fresh value, False for nothing, None for unknown. `holder_class`: the member's class when
    it is (a base of) the class of the object holding the attribute; `texts`: that object's
    expression in the analysed method (`self`, `self.model`), the method's name, its source
    and the module's."""
    name = member.name.value
    if name == "__init__":
        return False  # runs once, when the object is built
    if holder_class is None:
        return None
    holder, analysed, own_text, source = texts
    if _called_in(holder, name, own_text):
        return False  # called from the analysed method: followed there
    if not lightning:
        # Called nowhere in this module, and not a driver of the analysed method (a `fit`
        # that cuts the state before calling `train_step`): nothing runs it between calls.
        called = re.search(rf"\.{re.escape(name)}\(", source)
        drives = _called_in("self", analysed, _code(member))
        return None if called or drives else False
    if name in RARER_HOOKS:
        return False
    if name in PER_BATCH_HOOKS:
        effects = effects_of(context, member, holder_class, "self")
        how = effect_on(attribute, effects) if effects is not None else None
        if how is None or how == UNKNOWN:
            return None
        return fresh(how, member)
    return None


def _write_pattern(attributes: str) -> re.Pattern[str]:
    """A line that assigns to `<something>.attribute` (a tuple target too), for attributes
    `a|b`. It may also match a call statement with keywords after the attribute; that only
    makes the state unknown."""
    return re.compile(rf"(?m)^[^=\n#(]*\.(?:{attributes})\b[^=\n]*(?<![!<>=])=(?!=)")


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


# ------------------------------------------------------------------ objects built by factories
CLASS_LINE = re.compile(r"(?m)^class[ \t]+(\w+)")
BASE_NAMES = re.compile(r"(?m)^class[ \t]+\w+[ \t]*\([ \t]*(\w+)")
RETURNED_CALL = re.compile(r"(?m)^[ \t]+return[ \t]+([\w.]+)[ \t]*\(")
RETURN_LINE = re.compile(r"(?m)^[ \t]+return\b")


def module_factories(source: str, module_name: str) -> dict[str, str]:
    """Phase 1: top-level functions whose every return builds one class of the module that
    keeps state on its objects (`def build_model(): return Streamer(...)`), read from the
    text: qualified function -> qualified class."""
    if not ATTRIBUTE_STATE.search(source):
        return {}
    classes = set(CLASS_LINE.findall(source))
    found: dict[str, str] = {}
    for block in top_level_blocks(source):
        match = DEFINED.match(block.text)
        if match is None or block.text.startswith((" ", "\t")):
            continue
        built = set(RETURNED_CALL.findall(block.text))
        if len(built) != 1 or len(RETURN_LINE.findall(block.text)) != len(
            RETURNED_CALL.findall(block.text)
        ):
            continue
        (name,) = built
        if name in classes:
            found[f"{module_name}.{match.group(1)}"] = f"{module_name}.{name}"
    return found


def import_factories(context: FileContext, index: ProjectIndex) -> None:
    """Phase 2: factories imported from other files of the run, and classes a package
    re-exports from one of its modules (`from pkg.nn import Streamer`, defined in
    `pkg/nn/streamer.py`), with the facts of the class under the bare name `class_of` gives
    for their objects."""
    for local, qualified in context.imports.aliases.items():
        found = index.lookup(qualified)
        if found is None:
            continue
        summary, name = found
        built = summary.factories.get(f"{summary.module_name}.{name}")
        if built is not None:
            context.factories[local] = built
            _import_class(context, summary, built)
        elif local not in context.stateful_classes and name in summary.imported:
            _import_reexported(context, index, summary, name)


def _import_reexported(
    context: FileContext, index: ProjectIndex, package: ModuleSummary, name: str
) -> None:
    """The one stateful class called `name` in the modules under `package`, which imports it."""
    if name not in index.stateful_names():
        return
    prefix = package.module_name + "."
    owners = [
        summary
        for module_name, summary in index.summaries.items()
        if module_name.startswith(prefix) and f"{module_name}.{name}" in summary.stateful_classes
    ]
    if len(owners) == 1:
        _import_class(context, owners[0], f"{owners[0].module_name}.{name}")


def _import_class(context: FileContext, summary: ModuleSummary, qualified: str) -> None:
    """The facts of a class of another module, under its bare name."""
    short = qualified.rsplit(".", 1)[-1]
    attributes = summary.stateful_classes.get(qualified)
    if attributes:
        context.stateful_classes.setdefault(short, attributes)
        context.state_methods.setdefault(short, summary.state_methods.get(qualified, {}))
    cuts = summary.forward_cuts.get(qualified)
    if cuts:
        context.forward_cuts.setdefault(short, cuts)
    resets = summary.forward_resets.get(qualified)
    if resets:
        context.forward_resets.setdefault(short, resets)


def factory_constructions(module: cst.Module, context: FileContext) -> None:
    """`model = build_model()`: objects built by a factory of the run or of this module,
    recorded as constructions of the class the factory builds."""
    if not context.stateful_classes:
        return
    index_definitions(module, context)
    for name, function in context.function_defs.items():
        built = _built_by(function, context)
        if built is not None:
            context.factories.setdefault(name, built)
    if not context.factories:
        return
    for node in descendants([module]):
        if not isinstance(node, cst.Assign) or not isinstance(node.value, cst.Call):
            continue
        built = context.factories.get(dotted_name(node.value.func) or "")
        if built is None:
            continue
        for target in node.targets:
            for bound in target_names(target.target):
                context.constructions.setdefault(bound, Construction(built, node.value))


def _built_by(function: cst.FunctionDef, context: FileContext) -> str | None:
    """The qualified class every return of a function builds, if one."""
    built: set[str] = set()
    for node in descendants([function.body], stop=NESTED_SCOPES):
        if isinstance(node, cst.Return):
            if not isinstance(node.value, cst.Call):
                return None
            qualified = context.qualify(node.value.func)
            if qualified is None or not qualified.rsplit(".", 1)[-1][:1].isupper():
                return None
            built.add(qualified)
    return built.pop() if len(built) == 1 else None
