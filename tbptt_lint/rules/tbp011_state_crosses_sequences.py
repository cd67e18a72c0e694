"""TBP011 state-crosses-sequences: recurrent state is carried between unrelated sequences."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

from tbptt_lint.analysis.attributes import UNKNOWN, is_lightning_module
from tbptt_lint.analysis.context import Construction
from tbptt_lint.analysis.events import RecurrentCall, StateRead, UnitEvents
from tbptt_lint.analysis.interpreter import names_in, target_names
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name, is_true_literal
from tbptt_lint.analysis.queries import queries, spans_contain
from tbptt_lint.analysis.values import CUT, LEAF, RESET
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.diagnostics import Finding, Severity
from tbptt_lint.rules.base import Rule

LOADERS = ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader")
RANDOM_SAMPLERS = ("RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler")


class StateCrossesSequences(Rule):
    """Recurrent state is carried between unrelated sequences.

    Carrying state from one batch to the next only makes sense when batch n+1 continues the
    sequences of batch n. With `DataLoader(shuffle=True)` or a random sampler the rows of
    consecutive batches are unrelated, so each sample starts from another sample's state. The
    same goes for state carried from the end of one epoch into the start of the next, and for
    state built for a fixed batch size while the loader's last batch is smaller (no
    `drop_last=True`). Re-initialise the state per batch or per epoch.
    """

    code = "TBP011"
    name = "state-crosses-sequences"
    severity = Severity.WARNING

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
                for loop in call.loops:
                    if id(loop) in reported or not isinstance(loop, cst.For):
                        continue
                    message = self._problem(model, unit, call, loop)
                    if message is not None:
                        reported.add(id(loop))
                        yield model.finding(self.code, loop.iter, message)
        yield from kept_between_shuffled_batches(model, self.code)
        yield from training_state_into_evaluation(model, self.code)

    def _problem(
        self, model: FileModel, unit: UnitEvents, call: RecurrentCall, loop: cst.For
    ) -> str | None:
        # A reset in this loop, or in a loop inside it around the call (`for epoch: for
        # batch in loader: hidden = None`), starts every pass afresh.
        inside = call.loops[call.loops.index(loop) :]
        if any(
            _resets_state(other, call) or _reset_by_a_call(unit, other, call)
            for other in inside
            if isinstance(other, (cst.For, cst.While))
        ):
            return None
        states = ", ".join(f"`{s}`" for s in call.states)
        loader = _loader_of(model, loop.iter)
        if loader is not None:
            if loader.flag("shuffle") or _random_sampler(model, loader):
                return (
                    f"{states} is carried from one batch of this shuffled loader to the next, "
                    "so every sample starts from an unrelated sample's state. Re-initialise "
                    "the state for each batch"
                )
            if loader.keyword("batch_size") is not None and not loader.flag("drop_last"):
                return (
                    f"{states} is carried across batches of a loader without "
                    "`drop_last=True`: the last batch is smaller than the state built for "
                    "the others. Pass `drop_last=True` or re-initialise the state per batch"
                )
            return None
        inner = [other for other in call.loops if other is not loop]
        nested_windows = [
            other
            for other in inner
            if unit.loop_parents.get(other, ()) and loop in unit.loop_parents[other]
        ]
        if nested_windows and any(w in unit.loops_with_backward for w in nested_windows):
            return (
                f"{states} is carried from the end of one pass of this loop into the next "
                "without a reset (for example from one epoch into the next). Re-initialise "
                "the state at the start of each pass"
            )
        return None


def _loader_of(model: FileModel, iterable: cst.BaseExpression) -> Construction | None:
    node = iterable
    while isinstance(node, cst.Call) and dotted_name(node.func) in ("enumerate", "tqdm", "iter"):
        if not node.args:
            return None
        node = node.args[0].value
    built = model.context.construction_of(dotted_name(node))
    if (
        built is None
        or built.qualified_class not in LOADERS
        and not built.qualified_class.endswith("DataLoader")
    ):
        return None
    return built


def _random_sampler(model: FileModel, loader: Construction) -> bool:
    sampler = loader.keyword("sampler")
    if isinstance(sampler, cst.Call):
        name = dotted_name(sampler.func) or ""
    else:
        built = model.context.construction_of(dotted_name(sampler) if sampler else None)
        name = built.qualified_class if built is not None else ""
    return name.rsplit(".", 1)[-1] in RANDOM_SAMPLERS


def _resets_state(loop: cst.For | cst.While, call: RecurrentCall) -> bool:
    """A plain re-assignment of the state that runs on every pass of the loop, outside any
    inner loop, and not by the recurrent call itself or a cut of the state."""
    for statement in _unconditional_statements(loop.body.body):
        for small in statement.body:
            if not isinstance(small, cst.Assign) or small is call.statement:
                continue
            bound = {n for t in small.targets for n in target_names(t.target)}
            if not bound & set(call.states):
                continue
            if not names_in(small.value) & set(call.states):
                return True
    return False


def _reset_by_a_call(unit: UnitEvents, loop: cst.For | cst.While, call: RecurrentCall) -> bool:
    """`self.reset_hidden()`, `model.reset_state()` on every pass of the loop: a call whose body
    re-initialises the state kept on an object (the analysis follows it into that body)."""
    if not unit.attribute_resets:
        return False
    return any(
        isinstance(small, cst.Expr) and (id(small.value), state) in unit.attribute_resets
        for statement in _unconditional_statements(loop.body.body)
        for small in statement.body
        for state in call.states
    )


def _unconditional_statements(body: Sequence[cst.CSTNode]) -> Iterator[cst.SimpleStatementLine]:
    """The simple statements of a block that run whenever the block does: its own, and those
    of `with` blocks and `if True:` inside it. A reset under any other condition (`if hidden is
    None:`) does not happen on every pass."""
    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine):
            yield statement
        elif isinstance(statement, cst.With) or (
            isinstance(statement, cst.If) and is_true_literal(statement.test)
        ):
            yield from _unconditional_statements(statement.body.body)


# ------------------------------------------------------------------ state kept on attributes
def kept_between_shuffled_batches(model: FileModel, code: str) -> Iterator[Finding]:
    """A Lightning `training_step` that keeps state on `self` from one batch to the next (cut
    or not) while its module's `train_dataloader` shuffles."""
    ask = queries(model)
    for unit in model.units:
        if not unit.carried_between_calls:
            continue
        loader = _lightning_train_loader(model, unit.unit)
        if loader is None or not (loader.flag("shuffle") or _random_sampler(model, loader)):
            continue
        for call in unit.recurrent_calls:
            kept = [s for s in call.states if s in unit.carried_between_calls]
            if not kept or call.no_grad or not ask.is_carried(unit, call):
                continue
            message = (
                f"`{kept[0]}` is kept on the module from one `training_step` to the next while "
                f"`train_dataloader` shuffles (line {model.line(loader.call)}), so every sample "
                "starts from an unrelated sample's state. Re-initialise the state for each "
                "batch"
            )
            yield model.finding(code, call.state_args[kept[0]], message)
            break


def _lightning_train_loader(model: FileModel, method: cst.CSTNode) -> Construction | None:
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
                        return Construction(qualified, node.value)
    return None


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
