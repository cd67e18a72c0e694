"""Plain-words explanations: of autograd errors raised inside `trace`, and of findings."""

from __future__ import annotations

from collections.abc import Sequence

from tbptt_lint.tracer.graph_walk import FreedSaved
from tbptt_lint.tracer.records import BackwardCall
from tbptt_lint.tracer.steps import StateLeak
from tbptt_lint.tracer.words import plural

SECOND_TIME = "backward through the graph a second time"
INPLACE = "modified by an inplace operation"
MARKER = "[tbptt-lint]"

DETACH_FIX = (
    "Fix: cut the carried state between windows, before the next window's forward: "
    "`h = h.detach()`; for an LSTM cut both parts, `h, c = h.detach(), c.detach()`; for a list "
    "or tuple of states cut every element. `retain_graph=True` only hides this error: every "
    "earlier window's graph stays alive and is backpropagated again, so the horizon keeps growing."
)
CHAIN_FIX = (
    "The graph reaches leaf states (`state.detach()` then `requires_grad_()`): this is the k1/k2 "
    "recipe, whose windows overlap when k1 < k2, so each step's graph is backpropagated by "
    "several backward calls. Fix: pass `retain_graph=True` to the loss's backward and to every "
    "chained `state.backward(leaf.grad, retain_graph=True)`; each step's graph is freed anyway "
    "once its states drop out of the last k2 steps."
)
INPLACE_FIX = (
    "Fix: cut carried state out of place (`h = h.detach()`, not `h.detach_()` or `h.data`), "
    "never write into a state tensor a graph still uses (`h[...] = ...`, `h.zero_()`), and when "
    "windows overlap call `optimizer.step()` only after every backward that reaches the window."
)


def graph_gradients_note(count: int) -> str:
    return (
        f"{count} gradient(s) were taken with create_graph=True without accumulating into "
        "`.grad` (`torch.autograd.grad(..., create_graph=True)`, `torch.func.grad`): the tracer "
        "counts those as part of a loss (a gradient penalty, a meta-learning step), not as "
        "backward calls of a TBPTT window."
    )


def opaque_hint(names: Sequence[str]) -> str:
    """How to make the steps inside these opaque nodes visible, as sentences ('' if unknown)."""
    hints = []
    if any("CompiledFunctionBackward" in name for name in names):
        hints.append(
            "Steps run inside torch.compile'd code are not seen: compile the cell or RNN module "
            "alone (`step = torch.compile(cell)` counts one step per call, traced as "
            "`trace(step)` or `trace(None)`, not `trace(cell)`), or trace under "
            "`torch.compiler.set_stance('force_eager')` (torch 2.6+; before that, run with "
            "TORCHDYNAMO_DISABLE=1)."
        )
    if any("CheckpointFunctionBackward" in name for name in names):
        hints.append(
            "Reentrant checkpointing hides the steps it wraps: "
            "`checkpoint(..., use_reentrant=False)` keeps them visible."
        )
    return " ".join(hints)


def window_of(step: int, calls: Sequence[BackwardCall]) -> int | None:
    """Index of the root backward whose window contains `step` (the first one past it)."""
    for call in calls:
        if step < call.step:
            return call.index
    return None


def describe_leaks(
    leaks: Sequence[StateLeak],
    calls: Sequence[BackwardCall],  # noqa: ARG001 - public signature, kept for callers
    limit: int = 3,
) -> str:
    """'`c` passed to LSTM 'rnn' at step 20 still references step 19, backpropagated by #0'."""
    if not leaks:
        return ""
    # One sentence per state as the user's code names it: `hidden` with the parts that leak,
    # or the part's own name (`h`) where the call site shows none.
    by_state: dict[tuple[str, str], list[StateLeak]] = {}
    for leak in leaks:
        name = leak.variable if leak.container else leak.variable or leak.part
        by_state.setdefault((leak.module, name), []).append(leak)
    lines = []
    for (module, name), items in list(by_state.items())[:limit]:
        first = items[0]
        steps = {leak.step for leak in items}
        more = f" (and {plural(len(steps) - 1, 'more time')})" if len(steps) > 1 else ""
        label = f"`{name}`"
        if first.container:
            parts = list(dict.fromkeys(leak.part for leak in items))
            which = "part" if len(parts) == 1 else "parts"
            label += f" (its {which} " + ", ".join(f"`{p}`" for p in parts) + ")"
        lines.append(
            f"{label} passed to {module!r} at step {first.step} still references the graph of "
            f"step {first.from_step}, from the window that backward #{first.backward_index} "
            f"already backpropagated{more}."
        )
    if len(by_state) > limit:
        others = len(by_state) - limit
        verb = "leaks" if others == 1 else "leak"
        lines.append(f"{plural(others, 'more state')} {verb} the same way.")
    leaked_parts = {leak.part for leak in leaks}
    if leaked_parts == {"c"}:
        lines.append("Only `c` leaks: `h` is cut but the cell state is not.")
    return " ".join(lines)


def explain_error(
    message: str,
    call_index: int,
    unreadable: Sequence[FreedSaved],
    leaks: Sequence[StateLeak],
    calls: Sequence[BackwardCall],
    leaf_states: bool = False,
) -> str | None:
    """The text appended to a "second time" or "inplace" RuntimeError, or None for others.

    `leaf_states`: the failing graph reaches the leaf states of the k1/k2 recipe, whose
    overlapping windows need the graph kept, not cut."""
    if SECOND_TIME in message:
        freed_steps = sorted(
            {
                step
                for u in unreadable
                if u.reason == "freed" and u.step is not None
                for step in range(u.step, u.step + u.steps)
            }
        )
        text = [
            f"{MARKER} Backward #{call_index} reaches a graph an earlier backward already freed."
        ]
        if freed_steps:
            lo, hi = freed_steps[0], freed_steps[-1]
            owner = window_of(hi, calls)
            where = f" (the window of backward #{owner})" if owner is not None else ""
            text.append(
                f"Its gradient flows into steps {lo}..{hi}{where}, whose saved tensors are gone."
            )
        if leaf_states:
            text.append(CHAIN_FIX)
            return " ".join(text)
        leak_text = describe_leaks(leaks, calls)
        text.append(leak_text or "Carried state was not cut between windows.")
        text.append(DETACH_FIX)
        return " ".join(text)
    if INPLACE in message:
        bumped = sorted(
            {
                u.step + u.steps - 1
                for u in unreadable
                if u.reason == "inplace" and u.step is not None
            }
        )
        text = [
            f"{MARKER} Backward #{call_index} needs a tensor that was changed in place after "
            "the forward saved it."
        ]
        if bumped:
            owner = window_of(bumped[-1], calls)
            where = f", in the window of backward #{owner}" if owner is not None else ""
            text.append(f"The changed tensor was saved by step {bumped[-1]}{where}.")
        leak_text = describe_leaks(leaks, calls)
        if leak_text:
            text.append(leak_text)
        text.append(INPLACE_FIX)
        return " ".join(text)
    return None


def add_explanation(exc: BaseException, text: str) -> None:
    """Append to the exception's message, keeping its type, identity and traceback."""
    if getattr(exc, "_tbptt_explained", False) or not exc.args:
        return
    exc.args = (f"{exc.args[0]}\n\n{text}", *exc.args[1:])
    exc._tbptt_explained = True  # type: ignore[attr-defined]


def stale_grad_finding(
    count: int, first_call: int, shape: tuple[int, ...], step: int | None
) -> str:
    at = f" below step {step}" if step is not None else ""
    return (
        f"Stale .grad on leaf states: {count} time(s), first in backward #{first_call}, a leaf "
        f"state of shape {shape}{at} already held a .grad when the backward accumulated into it. "
        "With overlapping windows (k1 < k2) the old gradient is summed with the new one and the "
        "chained `state.backward(leaf.grad)` calls pass on wrong gradients. Clear the leaves "
        "first: `for leaf, _ in states: leaf.grad = None`."
    )


def growth_explanation(
    horizons: Sequence[int], leaks: Sequence[StateLeak], calls: Sequence[BackwardCall]
) -> str | None:
    """'the horizon grows by 10 every window: carried state is never cut', when it does."""
    if len(horizons) < 3:
        return None
    diffs = [b - a for a, b in zip(horizons[:-1], horizons[1:], strict=True)][-3:]
    if not diffs or min(diffs) <= 0:
        return None
    step = f"by {diffs[0]}" if len(set(diffs)) == 1 else "steadily"
    text = f"the horizon grows {step} every window: carried state is never cut."
    leak_text = describe_leaks(leaks, calls)
    return f"{text} {leak_text}".strip()
