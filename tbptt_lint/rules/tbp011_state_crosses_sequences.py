"""TBP011 state-crosses-sequences: recurrent state is carried between unrelated sequences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import libcst as cst

from tbptt_lint.analysis.attributes import UNKNOWN, is_lightning_module
from tbptt_lint.analysis.conditions import names_bound_in, reads_any
from tbptt_lint.analysis.events import RecurrentCall, StateRead, UnitEvents
from tbptt_lint.analysis.index import LoaderInfo
from tbptt_lint.analysis.interpreter import names_in
from tbptt_lint.analysis.library_fits import library_fits
from tbptt_lint.analysis.loaders import (
    LOADERS,
    RANDOM_SAMPLERS,
    file_loaders,
    functions_given_loaders,
    loader_iterated,
)
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name, is_true_literal, target_names
from tbptt_lint.analysis.queries import queries, spans_contain
from tbptt_lint.analysis.values import CUT, LEAF, RESET, Status
from tbptt_lint.analysis.walk import NESTED_SCOPES, descendants
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class StateCrossesSequences(Rule):
    """Recurrent state is carried between unrelated sequences.

    Carrying state from one batch to the next only makes sense when batch n+1 continues the
    sequences of batch n. With `DataLoader(shuffle=True)` or a random sampler the rows of
    consecutive batches are unrelated, so each sample starts from another sample's state. The
    same goes for state carried from the end of one epoch into the start of the next, and for
    state built for a fixed batch size while the loader's last batch is smaller (no
    `drop_last=True`). Re-initialise the state per batch or per epoch.

    A state counts as carried across a loop only when, on some path, the value a recurrent
    call reads may come from an earlier pass of that loop with no reset in between; a loader
    counts as shuffled only when it is a torch `DataLoader` known to shuffle (see
    `analysis/loaders.py`).
    """

    code = "TBP011"

    INVALID = (
        """
from torch.utils.data import DataLoader
loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
hidden = model.init_hidden(8)
for x, y in loader:
    hidden = hidden.detach()
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
    )
    VALID = (
        """
from torch.utils.data import DataLoader
loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True)
for x, y in loader:
    hidden = model.init_hidden(8)
    out, hidden = model(x, hidden)
    criterion(out, y).backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        ask = queries(model)
        reported: set[int] = set()
        for unit in model.units:
            for call in unit.recurrent_calls:
                if call.no_grad or not ask.is_carried(unit, call):
                    continue
                entered = _entered_from_evaluation(model, unit, call)
                if entered is not None:
                    training, evaluation = entered
                    if id(training) not in reported:
                        reported.add(id(training))
                        yield model.finding(
                            self.code, training.iter, _evaluation_message(model, call, evaluation)
                        )
                    continue
                for loop in call.loops:
                    if id(loop) in reported:
                        continue
                    if isinstance(loop, cst.For):
                        message, where = self._problem(model, unit, call, loop), loop.iter
                    elif isinstance(loop, cst.While) and _restarts_a_pass(unit, call, loop):
                        message, where = _restart_message(call), loop.test
                    else:
                        continue
                    if message is not None:
                        reported.add(id(loop))
                        yield model.finding(self.code, where, message)
        yield from kept_between_shuffled_batches(model, self.code)
        yield from training_state_into_evaluation(model, self.code)
        yield from fitted_by_library(model, self.code)

    def _problem(
        self, model: FileModel, unit: UnitEvents, call: RecurrentCall, loop: cst.For
    ) -> str | None:
        # Only a state whose value may come from an earlier pass of this very loop, with no
        # reset on the way, is carried across it: a reset on every path into the call (per
        # batch, or per epoch right before the batch loop) starts each pass afresh.
        carried = [read for read in unit.reads_of(call) if _carried_across(read, loop)]
        if not carried:
            return None
        states = ", ".join(f"`{s}`" for s in call.states)
        if _random_order(model, unit, loop):
            return (
                f"{states} is carried from one batch to the next while this loop visits the "
                "batches in random order, so every batch starts from the final state of an "
                "unrelated one. Re-initialise the state for each batch, or keep the order"
            )
        loader = None
        if not _counts(loop.iter) and _may_iterate_a_loader(model, unit):
            loader = loader_iterated(file_loaders(model), model.context.index, model.line(loop))
        if loader is not None:
            if loader.shuffled:
                return (
                    f"{states} is carried from one batch of this shuffled loader to the next, "
                    "so every sample starts from an unrelated sample's state. Re-initialise "
                    "the state for each batch"
                )
            if loader.shuffled is False and _short_last_batch(loader, unit, call):
                return (
                    f"{states} is carried across batches of a loader without "
                    "`drop_last=True`: the last batch is smaller than the state built for "
                    "the others. Pass `drop_last=True` or re-initialise the state per batch"
                )
            return None
        if _restarts_windows(unit, call, loop) or _restarts_a_pass(unit, call, loop):
            return _restart_message(call)
        return None


def _restart_message(call: RecurrentCall) -> str:
    states = ", ".join(f"`{s}`" for s in call.states)
    return (
        f"{states} is carried from the end of one pass of this loop into the next without a "
        "reset (for example from one epoch into the next). Re-initialise the state at the "
        "start of each pass"
    )


def _restarts_a_pass(unit: UnitEvents, call: RecurrentCall, loop: cst.For | cst.While) -> bool:
    """`hidden = run_epoch(hidden)` right inside the loop, where `run_epoch` runs a whole
    window loop over the state it is given: every pass runs the windows again, over data
    that nothing the loop binds tells apart (a sequence the function gets itself). A call
    also given the loop's batch (`run(batch, hidden)`) may continue the batch before: unknown."""
    if not call.runs_windows or not call.loops or call.loops[-1] is not loop:
        return False
    if not any(loop in read.carried_across for read in unit.reads_of(call)):
        return False
    bound = names_bound_in(loop)
    passed = {id(expression) for expression in call.state_args.values()}
    return not any(
        reads_any(arg.value, bound) for arg in call.call.args if id(arg.value) not in passed
    )


def _entered_from_evaluation(
    model: FileModel, unit: UnitEvents, call: RecurrentCall
) -> tuple[cst.For, cst.CSTNode] | None:
    """(training loop, evaluation loop) when the state the call reads on the first pass of a
    loop with a backward may be the one a later loop without backward (an evaluation pass
    over other batches) left in the previous pass of a loop around both, with no reset in
    between: `for epoch: for x in train: ...; for x in val: ...` with the state carried on."""
    for depth, outer in enumerate(call.loops[:-1]):
        inner = call.loops[depth + 1]
        if not isinstance(inner, cst.For) or inner not in unit.loops_with_backward:
            continue
        for read in unit.reads_of(call):
            if outer not in read.carried_across:
                continue
            for origin in read.origins:
                if read.how_by_origin.get(id(origin)) in (RESET, UNKNOWN):
                    continue
                evaluation = _later_loop_around(model, unit, outer, inner, origin)
                if evaluation is not None and _steps_state_in(unit, evaluation, read.name):
                    return inner, evaluation
    return None


def _later_loop_around(
    model: FileModel,
    unit: UnitEvents,
    outer: cst.CSTNode,
    inner: cst.CSTNode,
    origin: cst.CSTNode,
) -> cst.CSTNode | None:
    """The loop without backward, directly inside `outer` and after `inner`, that holds
    `origin`."""
    for loop, parents in unit.loop_parents.items():
        if not parents or parents[-1] is not outer or loop is inner:
            continue
        if loop in unit.loops_with_backward or model.line(loop) <= model.line(inner):
            continue
        if spans_contain(model, loop, origin):
            return loop
    return None


def _steps_state_in(unit: UnitEvents, loop: cst.CSTNode, state: str) -> bool:
    """A recurrent call inside `loop` steps `state`: the loop runs the model over batches,
    rather than, say, cutting the state's parts one by one."""
    return any(loop in other.loops and state in other.states for other in unit.recurrent_calls)


def _evaluation_message(model: FileModel, call: RecurrentCall, evaluation: cst.CSTNode) -> str:
    states = ", ".join(f"`{s}`" for s in call.states)
    return (
        f"{states} enters this loop with the state the loop at line {model.line(evaluation)} "
        "(no backward: an evaluation pass) left in the previous pass, so the first batch "
        "starts from the end of unrelated sequences. Re-initialise the state before this loop"
    )


# Calls that draw a random order of indices, and that shuffle a sequence in place.
PERMUTATIONS = frozenset({"torch.randperm", "numpy.random.permutation"})
IN_PLACE_SHUFFLES = frozenset({"random.shuffle", "numpy.random.shuffle"})
# Methods that hand on a tensor or array's items in the same order.
SAME_ORDER_METHODS = frozenset({"tolist", "numpy", "cpu", "flatten", "view", "reshape"})
ORDER_WRAPPERS = frozenset({"enumerate", "tqdm", "iter", "list", "tuple"})
ORDER_DRAWS = ("randperm", "permutation", "shuffle(")


def _random_order(model: FileModel, unit: UnitEvents, loop: cst.For) -> bool:
    """Whether the loop visits its items in random order: it iterates a random permutation
    (`torch.randperm(n)`, `np.random.permutation(n)`, directly or through a name the unit
    binds only to such a draw), or the batches of an array the unit shuffles in place
    (`np.random.shuffle(batches)`, `random.shuffle(batches)`) before the loop, iterated or
    indexed with the loop's target (`batches[i]`)."""
    context = model.context
    if not any(context.mentions(word) for word in ORDER_DRAWS):
        return False  # no call that draws an order in the file: no walk of the unit
    iterable = _same_order_source(loop.iter)
    root = unit.unit.body if isinstance(unit.unit, cst.FunctionDef) else unit.unit
    if isinstance(iterable, cst.Call) and context.qualify(iterable.func) in PERMUTATIONS:
        return True
    name = dotted_name(iterable)
    if name is not None and _bound_only_to_permutations(model, root, name):
        return True
    shuffled = _shuffled_in_place_before(model, root, loop)
    if not shuffled:
        return False
    if name in shuffled:
        return True
    indices = set(target_names(loop.target))
    return any(
        isinstance(node, cst.Subscript)
        and dotted_name(node.value) in shuffled
        and bool(node.slice)
        and isinstance(node.slice[0].slice, cst.Index)
        and dotted_name(node.slice[0].slice.value) in indices
        for node in descendants([loop.body], stop=NESTED_SCOPES)
    )


def _same_order_source(iterable: cst.BaseExpression) -> cst.BaseExpression:
    """`enumerate(order.tolist())` -> `order`: what the loop's items come from, in order."""
    while isinstance(iterable, cst.Call):
        func = iterable.func
        if isinstance(func, cst.Attribute) and func.attr.value in SAME_ORDER_METHODS:
            iterable = func.value
        elif dotted_name(func) in ORDER_WRAPPERS and iterable.args:
            iterable = iterable.args[0].value
        else:
            break
    return iterable


def _bound_only_to_permutations(model: FileModel, root: cst.CSTNode, name: str) -> bool:
    """Every assignment of `name` in the unit draws a random permutation."""
    values = [
        node.value
        for node in descendants([root], stop=NESTED_SCOPES)
        if isinstance(node, cst.Assign) and any(dotted_name(t.target) == name for t in node.targets)
    ]
    return bool(values) and all(
        isinstance(v := _same_order_source(value), cst.Call)
        and model.context.qualify(v.func) in PERMUTATIONS
        for value in values
    )


def _shuffled_in_place_before(model: FileModel, root: cst.CSTNode, loop: cst.For) -> set[str]:
    """Names the unit shuffles in place, with a statement before the loop."""
    line = model.line(loop)
    return {
        name
        for node in descendants([root], stop=NESTED_SCOPES)
        if isinstance(node, cst.Expr)
        and isinstance(node.value, cst.Call)
        and model.context.qualify(node.value.func) in IN_PLACE_SHUFFLES
        and node.value.args
        and (name := dotted_name(node.value.args[0].value)) is not None
        and model.line(node) < line
    }


def _restarts_windows(unit: UnitEvents, call: RecurrentCall, loop: cst.For) -> bool:
    """Whether every pass of `loop` runs a window loop (one with a backward) around the call
    over the same sequence again, as an epoch loop does: the window loop's range reads
    nothing the outer loop binds. Windows of each new batch (`for t in range(0, x.size(1),
    k)` inside `for x in batches`) may continue the batch before or not, which depends on the
    batches: unknown."""
    bound: set[str] | None = None
    for inner in call.loops:
        if inner is loop or loop not in unit.loop_parents.get(inner, ()):
            continue
        if inner not in unit.loops_with_backward:
            continue
        if bound is None:
            bound = names_bound_in(loop)
        header = inner.iter if isinstance(inner, cst.For) else cast(cst.While, inner).test
        if not reads_any(header, bound):
            return True
    return False


def _carried_across(read: StateRead, loop: cst.CSTNode) -> bool:
    value = read.value
    holds_state = value.status != Status.FRESH or value.how in (CUT, LEAF)
    return holds_state and loop in read.carried_across


def _counts(iterable: cst.BaseExpression) -> bool:
    """`range(...)`, possibly enumerated: not a loader, and no need to look one up."""
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("enumerate", "tqdm"):
        if not iterable.args:
            return False
        iterable = iterable.args[0].value
    return isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("range", "trange")


def _may_iterate_a_loader(model: FileModel, unit: UnitEvents) -> bool:
    """Whether a loop of this unit may iterate a DataLoader: one built in this file, or one
    that some call in the run passes to a function of this unit's name. Reading the file for
    loaders costs a parse, which most files never need."""
    if model.context.mentions("DataLoader"):
        return True
    if not isinstance(unit.unit, cst.FunctionDef):
        return False
    return unit.unit.name.value in model.once(_functions_given_loaders)


def _functions_given_loaders(model: FileModel) -> frozenset[str]:
    return functions_given_loaders(model.context.index)


def _short_last_batch(loader: LoaderInfo, unit: UnitEvents, call: RecurrentCall) -> bool:
    """Whether the loader's last batch may be smaller than the state carried into it: a fixed
    `batch_size` (not 1), no `drop_last=True`, and a state built for that size (`torch.zeros(1,
    32, 64)` for `batch_size=32`, `init_hidden(args.batch_size)` for
    `batch_size=args.batch_size`)."""
    size = loader.batch_size
    if size is None or size in ("1", "None") or loader.drop_last is not False:
        return False
    states = set(call.states)
    root = unit.unit.body if isinstance(unit.unit, cst.FunctionDef) else unit.unit
    for node in descendants([root], stop=NESTED_SCOPES):
        if not isinstance(node, cst.Assign) or names_in(node.value) & states:
            continue
        if not {n for t in node.targets for n in target_names(t.target)} & states:
            continue
        built = (n for n in descendants([node.value]) if isinstance(n, cst.Call))
        if any(_passes_size(c, size) for c in built):
            return True
    return False


def _passes_size(call: cst.Call, size: str) -> bool:
    """Whether a call that builds a state is given the batch size."""
    if size.isdigit():
        return any(
            isinstance(node, cst.Integer) and node.value == size
            for arg in call.args
            for node in descendants([arg.value])
        )
    return any(size in names_in(arg.value) for arg in call.args)


# ------------------------------------------------------------------ state kept on attributes
def kept_between_shuffled_batches(model: FileModel, code: str) -> Iterator[Finding]:
    """A Lightning `training_step` that keeps state on `self` from one batch to the next (cut
    or not) while its module's `train_dataloader` shuffles."""
    ask = queries(model)
    for unit in model.units:
        if not unit.carried_between_calls:
            continue
        loader = _lightning_train_loader(model, unit.unit)
        if loader is None or not _shuffles(model, loader):
            continue
        for call in unit.recurrent_calls:
            kept = [s for s in call.states if s in unit.carried_between_calls]
            if not kept or call.no_grad or not ask.is_carried(unit, call):
                continue
            message = (
                f"`{kept[0]}` is kept on the module from one `training_step` to the next while "
                f"`train_dataloader` shuffles (line {model.line(loader)}), so every sample "
                "starts from an unrelated sample's state. Re-initialise the state for each "
                "batch"
            )
            yield model.finding(code, call.state_args[kept[0]], message)
            break


def _lightning_train_loader(model: FileModel, method: cst.CSTNode) -> cst.Call | None:
    """The loader `train_dataloader` returns, in the Lightning module that defines `method`."""
    context = model.context
    owner = next((c for c in context.class_defs.values() if method in c.body.body), None)
    if owner is None or not is_lightning_module(context, owner):
        return None
    for member in owner.body.body:
        if isinstance(member, cst.FunctionDef) and member.name.value == "train_dataloader":
            for node in descendants([member.body]):
                if isinstance(node, cst.Return) and isinstance(node.value, cst.Call):
                    qualified = context.qualify(node.value.func)
                    if qualified in LOADERS:
                        return node.value
    return None


def _shuffles(model: FileModel, loader: cst.Call) -> bool:
    """A `DataLoader(...)` call that surely shuffles: `shuffle=True`, or a torch random
    sampler built in the call."""
    for arg in loader.args:
        keyword = arg.keyword.value if arg.keyword is not None else None
        if keyword == "shuffle" and is_true_literal(arg.value):
            return True
        if keyword == "sampler" and isinstance(arg.value, cst.Call):
            qualified = model.context.qualify(arg.value.func) or ""
            if qualified.rsplit(".", 1)[-1] in RANDOM_SAMPLERS:
                return True
    return False


def training_state_into_evaluation(model: FileModel, code: str) -> Iterator[Finding]:
    """An evaluation loop (no gradients) that starts from the state training left on an
    object (`model.state`, `self.hidden`) without re-initialising it first."""
    trained = {
        state
        for unit, call in model.recurrent_calls()
        if not call.no_grad
        for state in call.states
        if "." in state
    }
    reported: set[int] = set()
    for unit, call in model.recurrent_calls():
        loop = call.loops[-1] if call.loops else None
        if not call.no_grad or not isinstance(loop, cst.For) or id(loop) in reported:
            continue
        states = [s for s in call.states if "." in s and s in trained]
        reads = [r for r in unit.reads_of(call) if r.name in states]
        if reads and all(_starts_from_training(model, loop, read) for read in reads):
            reported.add(id(loop))
            names = ", ".join(f"`{r.name}`" for r in reads)
            message = (
                f"{names} is carried from training into this evaluation loop: its first batch "
                "starts from the state the last training batch left on the object. "
                "Re-initialise the state before the loop"
            )
            yield model.finding(code, loop.iter, message)


def _starts_from_training(model: FileModel, loop: cst.For, read: StateRead) -> bool:
    """Nothing resets the state before (or inside) the loop, and what reaches the loop's first
    pass comes from a recurrent call with gradients, or from outside this unit."""
    hows = {read.how_by_origin.get(id(origin)) for origin in read.origins}
    if hows & {RESET, UNKNOWN}:
        return False
    before = [o for o in read.origins if not spans_contain(model, loop, o)]
    return all(read.how_by_origin.get(id(o)) in TRAINED for o in before)


TRAINED = frozenset({"LIVE", "STALE", "PARTIAL", CUT, LEAF})


def fitted_by_library(model: FileModel, code: str) -> Iterator[Finding]:
    """A fastai `Learner` without callbacks fitting a model that keeps its state on itself:
    the library's epochs and validation passes run through the state with no reset."""
    for fit in library_fits(model.module, model.context):
        states = ", ".join(f"`self.{a}`" for a in fit.attributes)
        message = (
            f"`{fit.model_class}` keeps its state on {states} from one call to the next, and "
            f"`{fit.method}` runs every epoch's training batches and then the validation "
            "batches through it with nothing resetting it: each epoch and each validation "
            "pass starts from the end of the stream before. Give the model a `reset()` and "
            "have a callback call it before every epoch and validation (fastai's "
            "`ModelResetter`)"
        )
        yield model.finding(code, fit.call, message)
