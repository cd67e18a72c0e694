"""`assert_tbptt`: compare measured strides and horizons with TBPTT(k1, k2), in plain words.

Steady state only. Windows that correct loops take beside the steady ones pass:
- ramp-ups: before the first full window, and where the gradient reaches every step of the
  window back to a state made anew (each new sequence of the k1/k2 recipe ramps up again);
- tails: a window with fewer than k1 steps with gradients after which the state is made
  anew (an epoch's last window), or the run's last;
- strides lengthened by steps without gradients that ran on a state of their own (sampling
  from a copy, an evaluation, a rollout) or that started one (a burn-in).
"Made anew" is what the tracer's forward hook records: a step given a state other than the
one its module returned on its previous call (`StepTracker.fresh_starts`). Ramps and burn-ins
pass only while windows that match outnumber them: where every window is like that, that is
the loop's horizon or stride (a warm-up every window is stride K1+K2), and it is reported.
`assert_tbptt()` without k1 and k2 checks only that carried state is cut somewhere: a horizon
that grows with every window while state still references backpropagated windows fails.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from tbptt_lint.tracer.explain import describe_leaks, growth_explanation, opaque_hint
from tbptt_lint.tracer.records import BackwardCall, StepRecord
from tbptt_lint.tracer.steps import StateLeak
from tbptt_lint.tracer.words import odd_windows, plural, typical


@dataclass(frozen=True)
class RunFacts:
    """What the steps say about the windows, beyond strides and horizons."""

    grad_steps: Sequence[int] = ()  # per call: steps with gradients since the previous one
    # Steps given a state other than the one their module returned last (made anew, or one
    # kept from earlier: sampling and evaluation run on their own), sorted.
    fresh_starts: Sequence[int] = ()


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


def _grad_steps(call: BackwardCall, facts: RunFacts) -> int:
    if call.index < len(facts.grad_steps):
        return facts.grad_steps[call.index]
    return call.stride


def _fresh_in(facts: RunFacts, low: int, high: int) -> bool:
    """Whether a state was made anew at a step in [low, high]."""
    starts = facts.fresh_starts
    at = bisect.bisect_left(starts, low)
    return at < len(starts) and starts[at] <= high


def _is_tail(
    call: BackwardCall, calls: Sequence[BackwardCall], k1: int | None, facts: RunFacts
) -> bool:
    """A window with fewer than k1 steps with gradients that ends a sequence: the run's last
    backward, or one after which the state is made anew (an epoch's last, short window)."""
    if k1 is None or len(calls) < 2 or not 0 < _grad_steps(call, facts) < k1:
        return False
    following = call.index + 1
    if following >= len(calls):
        return True
    return _fresh_in(facts, call.step, calls[following].step - 1)


def _no_grad_excess(call: BackwardCall, k1: int, facts: RunFacts) -> bool:
    """A stride longer than k1 only by steps without gradients that ran on a state of their
    own (sampling from a copy, an evaluation) or started one (a burn-in): a state is made
    anew somewhere in the window up to its first step with gradients. Steps without
    gradients that carry the training state on skip data, and do not pass."""
    if call.stride <= k1 or _grad_steps(call, facts) != k1:
        return False
    return _fresh_in(facts, call.step - call.stride, call.step - k1)


def _is_ramp(call: BackwardCall, facts: RunFacts) -> bool:
    """A short horizon that is all there is to reach: every step of the window with
    gradients is reached, and the chain starts where a sequence starts, or sequences start
    inside the window (an episode ended) and the horizon spans the longest stretch between
    them. A cut inside the window leaves steps unreached, or starts no sequence."""
    if not call.reached_steps:
        return False
    reached = set(call.reached_steps)
    first = call.step - min(call.stride, _grad_steps(call, facts))
    if not all(step in reached for step in range(first, call.step)):
        return False
    starts = facts.fresh_starts
    if min(reached) in starts:
        return True
    inside = starts[bisect.bisect_right(starts, first) : bisect.bisect_left(starts, call.step)]
    if not inside:
        return False
    bounds = [first, *inside, call.step]
    longest = max(later - earlier for earlier, later in zip(bounds, bounds[1:], strict=False))
    return call.horizon >= longest


def _check_stride(calls: Sequence[BackwardCall], k1: int, facts: RunFacts) -> list[str]:
    checked = calls[1:] if len(calls) > 1 else calls
    off = [c for c in checked if c.stride != k1 and not _is_tail(c, calls, k1, facts)]
    lengthened = {c.index for c in off if _no_grad_excess(c, k1, facts)}
    # Steps with gradients that start from a state of their own (an evaluation or a rollout
    # ran before them on another): never part of the stride.
    separate = {
        c.index for c in off if c.index in lengthened and _fresh_in(facts, c.step - k1, c.step - k1)
    }
    # Where most windows lengthen it by steps the training state goes through, that is the
    # stride: a burn-in or warm-up every window is stride K1+K2.
    every_window = len(lengthened - separate) > sum(1 for c in calls if c.stride == k1)
    excused = separate | (set() if every_window else lengthened)
    bad = [c for c in off if c.index not in excused]
    if not bad:
        return []
    first = bad[0]
    strides = sorted({c.stride for c in bad})
    hint = ""
    if len(calls) == 1 and strides[0] > k1:
        hint = " There is a single backward after all the steps: full BPTT, no truncation."
    elif all(c.stride > k1 and _grad_steps(c, facts) == k1 for c in bad):
        if len(bad) == len(checked) and len(strides) == 1:
            hint = (
                f" Every window takes {plural(k1, 'step')} with gradients after "
                f"{first.stride - k1} without that they continue from (a no-grad warm-up or "
                "burn-in): that scheme's "
                f"stride counts both, so assert k1={first.stride} for it."
            )
        else:
            hint = (
                f" Those windows take {plural(k1, 'step')} with gradients, and before them steps "
                "without "
                "gradients that carry the training state on, skipping data. Sampling or "
                "evaluating on a state of its own (a copy, or one made anew) does not count "
                "against the stride."
            )
    elif all(s > k1 for s in strides):
        hint = (
            " The backward runs less often than every k1 steps (losses of several windows summed"
            " before one backward, or warm-up steps taken with gradients)."
        )
    elif all(s < k1 for s in strides):
        hint = " The backward runs more often than every k1 steps."
    return [
        f"stride: backward #{first.index} came {plural(first.stride, 'step')} after the "
        "previous one, "
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
    # Most windows reach back the same, other than k2: that is the loop's horizon, and the
    # failure says so first (not the odd window, a ramp-up or a tail, that differs most).
    steady = typical(horizons)
    if steady is not None and steady[0] != k2 and 2 * steady[1] > len(visible) > 1 and not growth:
        return [_typical_horizon_sentence(visible, steady[0], steady[1], k2, leaks)]
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
    # Without k1, a tail is a window with fewer than k2 steps with gradients.
    tail_k = k1 if k1 is not None else k2
    short = {c.index for c in later if c.horizon < k2 and not _is_tail(c, calls, tail_k, facts)}
    ramps = {c.index for c in later if c.index in short and _is_ramp(c, facts)}
    if len(ramps) > sum(1 for c in visible if c.horizon == k2):
        ramps = set()  # most windows are that short: that is the horizon
    for c in later:
        if c.horizon == k2 or (c.horizon < k2 and c.index not in short) or c.index in ramps:
            continue
        problems.append(_horizon_sentence(c, k2, horizons, growth, leaks, visible))
        break
    return problems


def _typical_horizon_sentence(
    calls: Sequence[BackwardCall],
    horizon: int,
    count: int,
    k2: int,
    leaks: Sequence[StateLeak],
) -> str:
    """'53 of 54 windows reach back 5 steps; expected k2=10.', the odd ones, and the cause."""
    if count == len(calls):
        many = "both windows" if count == 2 else f"all {count} windows"
    else:
        many = f"{count} of {len(calls)} windows"
    head = f"horizon: {many} reach back {plural(horizon, 'step')}; expected k2={k2}."
    odd = odd_windows(calls, lambda c: c.horizon == horizon)
    if odd:
        head += " The others: " + ", ".join(odd) + "."
    steady_stride = typical([c.stride for c in calls])
    if 1 < horizon < k2 and steady_stride is not None and steady_stride[0] == horizon:
        return (
            f"{head} Likely cause: the state is cut where each window starts, so the gradient "
            f"reaches back one window, the stride of {plural(horizon, 'step')}. Reaching "
            f"k2={k2} steps back with a stride of {horizon} needs windows that overlap (the "
            f"k1/k2 recipe); if windows of {horizon} are meant, assert k2={horizon}."
        )
    return f"{head} Likely cause: {_horizon_cause(horizon, k2, None, leaks, calls)}"


def _horizon_sentence(
    call: BackwardCall,
    k2: int,
    horizons: list[int],
    growth: str | None,
    leaks: Sequence[StateLeak],
    calls: Sequence[BackwardCall],
) -> str:
    head = (
        f"horizon: backward #{call.index} (after step {call.step}) reached back "
        f"{plural(call.horizon, 'step')}, expected k2={k2} (measured horizons {_short(horizons)})."
    )
    return f"{head} Likely cause: {_horizon_cause(call.horizon, k2, growth, leaks, calls)}"


def _horizon_cause(
    horizon: int,
    k2: int,
    growth: str | None,
    leaks: Sequence[StateLeak],
    calls: Sequence[BackwardCall],
) -> str:
    if growth:
        return growth
    if horizon > k2:
        leak_text = describe_leaks(leaks, calls)
        cause = leak_text or "carried state is cut too late, or windows overlap."
        return f"the gradient reaches past the window; {cause}"
    if horizon == 1 and k2 > 1:
        return (
            "the state is cut at every step (a detach inside the time loop), "
            "so no gradient flows from one step to the next."
        )
    if horizon == 0:
        return (
            "the loss does not depend on any recurrent step through a graph "
            "(steps ran under no_grad, or the state passed on is not the one the loss uses)."
        )
    return "the state is cut inside the window, or the window is shorter than k2."


def _short(values: Sequence[int], limit: int = 8) -> str:
    if len(values) <= limit:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[:limit])) + f", ... ({len(values)} in all)"
