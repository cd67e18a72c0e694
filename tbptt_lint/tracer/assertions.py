"""`assert_tbptt`: compare measured strides and horizons with TBPTT(k1, k2), in plain words.

Steady state only. Windows that real loops take beside the steady ones pass:
- ramp-up: before the first full window, and wherever the gradient reaches back to a state
  made anew (each new sequence of the k1/k2 recipe ramps up again), horizons may be shorter;
- tails: a window shorter than k1 that ends a sequence (its length not a multiple of k1) and
  is followed by a full one, or ends the run;
- steps without gradients between windows (sampling, evaluation, a burn-in at the start of a
  sequence) may lengthen a stride whose steps with gradients number k1.
Ramps and lengthened strides pass only while windows that match outnumber them: where every
window is like that, that is the loop's stride or horizon, and it is reported.
`assert_tbptt()` without k1 and k2 checks only that carried state is cut somewhere: a horizon
that grows with every window while state still references backpropagated windows fails.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

from tbptt_lint.tracer.explain import describe_leaks, growth_explanation, opaque_hint
from tbptt_lint.tracer.records import BackwardCall, StepRecord
from tbptt_lint.tracer.steps import StateLeak


@dataclass(frozen=True)
class RunFacts:
    """What the steps say about the windows, beyond strides and horizons."""

    grad_steps: Sequence[int] = ()  # per call: steps with gradients since the previous one
    fresh_starts: Set[int] = frozenset()  # steps given a state made anew (sequence starts)


def grad_steps_per_call(calls: Sequence[BackwardCall], steps: Sequence[StepRecord]) -> list[int]:
    """For each call, how many of the steps in its stride were taken with gradients."""
    size = max((rec.index for rec in steps), default=-1) + 1
    flags = bytearray(size)
    for rec in steps:
        if rec.grad_enabled:
            flags[rec.index] = 1
    prefix = [0] * (size + 1)
    for i, flag in enumerate(flags):
        prefix[i + 1] = prefix[i] + flag

    def upto(step: int) -> int:
        return prefix[min(max(step, 0), size)]

    return [upto(c.step) - upto(c.step - c.stride) for c in calls]


def check_tbptt(
    calls: Sequence[BackwardCall],
    k1: int | None,
    k2: int | None,
    leaks: Sequence[StateLeak] = (),
    total_steps: int = 0,
    facts: RunFacts | None = None,
) -> list[str]:
    """Problems found, each a sentence; empty when the run matches."""
    facts = facts or RunFacts()
    if not calls:
        return ["no backward call was seen inside `trace`."]
    if k1 is None and k2 is None:
        return _check_cut(calls, leaks)
    if total_steps == 0 and all(c.step == 0 for c in calls):
        hint = opaque_hint([name for c in calls for name in c.opaque])
        return [
            "no time step was seen: no nn.RNN/LSTM/GRU or cell module ran, and no module fed its "
            "output back as its input. Pass the recurrent modules: "
            "trace(model, step_modules=[...])." + (f" {hint}" if hint else "")
        ]
    problems: list[str] = []
    if k1 is not None:
        problems += _check_stride(calls, k1, facts)
    if k2 is not None:
        problems += _check_horizon(calls, k2, k1, leaks, facts)
    return problems


def _check_cut(calls: Sequence[BackwardCall], leaks: Sequence[StateLeak]) -> list[str]:
    """Without k1 and k2: fail only on a leak, state never cut (horizons grow, state links)."""
    visible = [c for c in calls if not c.opaque]
    horizons = [c.horizon for c in visible]
    growth = growth_explanation(horizons, leaks, visible)
    if not leaks or growth is None:
        return []
    return [f"horizon: measured horizons {_short(horizons)}. Likely cause: {growth}"]


def _is_tail(call: BackwardCall, calls: Sequence[BackwardCall], k1: int | None) -> bool:
    """A window shorter than k1 that ends a sequence: the run's last, or followed by a full one."""
    if k1 is None or len(calls) < 2 or not 0 < call.stride < k1:
        return False
    following = call.index + 1
    return following >= len(calls) or calls[following].stride >= k1


def _no_grad_excess(call: BackwardCall, k1: int, facts: RunFacts) -> bool:
    """A stride longer than k1 only by steps taken without gradients."""
    if call.stride <= k1 or call.index >= len(facts.grad_steps):
        return False
    return facts.grad_steps[call.index] == k1


def _reaches_fresh_start(call: BackwardCall, facts: RunFacts) -> bool:
    """The gradient reaches back to where the state was made anew: nothing older to reach."""
    return bool(call.reached_steps) and min(call.reached_steps) in facts.fresh_starts


def _check_stride(calls: Sequence[BackwardCall], k1: int, facts: RunFacts) -> list[str]:
    checked = calls[1:] if len(calls) > 1 else calls
    off = [c for c in checked if c.stride != k1 and not _is_tail(c, calls, k1)]
    lengthened = {c.index for c in off if _no_grad_excess(c, k1, facts)}
    # Where most windows are lengthened, that is the stride (a no-grad warm-up every window).
    every_window = len(lengthened) > sum(1 for c in calls if c.stride == k1)
    bad = [c for c in off if every_window or c.index not in lengthened]
    if not bad:
        return []
    first = bad[0]
    strides = sorted({c.stride for c in bad})
    hint = ""
    if len(calls) == 1 and strides[0] > k1:
        hint = " There is a single backward after all the steps: full BPTT, no truncation."
    elif {c.index for c in bad} == lengthened:
        hint = (
            f" Every window takes {k1} steps with gradients and {first.stride - k1} without (a "
            "no-grad warm-up): warming up K1 steps before K2 with gradients is stride K1+K2, "
            f"so assert k1={first.stride} for that scheme."
            if len(strides) == 1
            else " Every window takes k1 steps with gradients plus steps without them."
        )
    elif all(s > k1 for s in strides):
        hint = (
            " The backward runs less often than every k1 steps (losses of several windows summed"
            " before one backward, or warm-up steps taken with gradients)."
        )
    elif all(s < k1 for s in strides):
        hint = " The backward runs more often than every k1 steps."
    return [
        f"stride: backward #{first.index} came {first.stride} steps after the previous one, "
        f"expected k1={k1} ({len(bad)} of {len(calls)} backward calls differ; measured strides "
        f"{_short([c.stride for c in calls])}).{hint}"
    ]


def _check_horizon(
    calls: Sequence[BackwardCall],
    k2: int,
    k1: int | None,
    leaks: Sequence[StateLeak],
    facts: RunFacts,
) -> list[str]:
    # A walk cut short at its node limit gives a lower bound: above k2 it still proves a
    # failure, at or below k2 it proves nothing.
    visible = [c for c in calls if not c.opaque and not (c.walk_limited and c.horizon <= k2)]
    if not visible and any(c.walk_limited for c in calls):
        return [
            f"horizon: every backward's graph is bigger than trace(..., max_walk_nodes=N) "
            f"lets the walk visit, so k2={k2} cannot be checked; raise N, or leave it out to "
            "walk whole graphs."
        ]
    if not visible:
        hint = opaque_hint(calls[0].opaque)
        return [
            f"horizon: every backward passes through a region the tracer cannot see into "
            f"({', '.join(sorted(set(calls[0].opaque)))}), so k2={k2} cannot be checked."
            + (f" {hint}" if hint else "")
        ]
    horizons = [c.horizon for c in visible]
    growth = growth_explanation(horizons, leaks, visible)
    first_full = next((i for i, h in enumerate(horizons) if h == k2), None)
    problems: list[str] = []
    if first_full is None:
        worst = max(visible, key=lambda c: abs(c.horizon - k2))
        problems.append(_horizon_sentence(worst, k2, horizons, growth, leaks, visible))
        return problems
    # Ramp-up: before the first full window horizons may be shorter, never longer.
    for c in visible[:first_full]:
        if c.horizon > k2:
            problems.append(_horizon_sentence(c, k2, horizons, growth, leaks, visible))
            return problems
    later = visible[first_full + 1 :]
    short = {c.index for c in later if c.horizon < k2 and not _is_tail(c, calls, k1)}
    ramps = {c.index for c in later if c.index in short and _reaches_fresh_start(c, facts)}
    if len(ramps) > sum(1 for c in visible if c.horizon == k2):
        ramps = set()  # most windows are that short: that is the horizon
    for c in later:
        if c.horizon == k2 or (c.horizon < k2 and c.index not in short) or c.index in ramps:
            continue
        problems.append(_horizon_sentence(c, k2, horizons, growth, leaks, visible))
        break
    return problems


def _horizon_sentence(
    call: BackwardCall,
    k2: int,
    horizons: list[int],
    growth: str | None,
    leaks: Sequence[StateLeak],
    calls: Sequence[BackwardCall],
) -> str:
    head = (
        f"horizon: backward #{call.index} (after step {call.step}) reached back {call.horizon} "
        f"steps, expected k2={k2} (measured horizons {_short(horizons)})."
    )
    if growth:
        return f"{head} Likely cause: {growth}"
    if call.horizon > k2:
        leak_text = describe_leaks(leaks, calls)
        cause = leak_text or "carried state is cut too late, or windows overlap."
        return f"{head} Likely cause: the gradient reaches past the window; {cause}"
    if call.horizon == 1 and k2 > 1:
        return (
            f"{head} Likely cause: the state is cut at every step (a detach inside the time loop), "
            "so no gradient flows from one step to the next."
        )
    if call.horizon == 0:
        return (
            f"{head} Likely cause: the loss does not depend on any recurrent step through a graph "
            "(steps ran under no_grad, or the state passed on is not the one the loss uses)."
        )
    return (
        f"{head} Likely cause: the state is cut inside the window, "
        "or the window is shorter than k2."
    )


def _short(values: Sequence[int], limit: int = 8) -> str:
    if len(values) <= limit:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[:limit])) + f", ... ({len(values)} in all)"
