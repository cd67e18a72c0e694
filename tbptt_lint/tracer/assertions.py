"""`assert_tbptt`: compare measured strides and horizons with TBPTT(k1, k2), in plain words.

Steady state only: early windows may be shorter (the k1/k2 chain ramps up 2, 4, 5, 5 ...),
and the first backward's stride may include a burn-in. The final window may be a shorter
tail when the sequence length is not a multiple of k1.
"""

from __future__ import annotations

from collections.abc import Sequence

from tbptt_lint.tracer.explain import describe_leaks, growth_explanation, opaque_hint
from tbptt_lint.tracer.records import BackwardCall
from tbptt_lint.tracer.steps import StateLeak


def check_tbptt(
    calls: Sequence[BackwardCall],
    k1: int | None,
    k2: int | None,
    leaks: Sequence[StateLeak] = (),
    total_steps: int = 0,
) -> list[str]:
    """Problems found, each a sentence; empty when the run matches."""
    if k1 is None and k2 is None:
        return []
    if not calls:
        return ["no backward call was seen inside `trace`."]
    if total_steps == 0 and all(c.step == 0 for c in calls):
        hint = opaque_hint([name for c in calls for name in c.opaque])
        return [
            "no time step was seen: no nn.RNN/LSTM/GRU or cell module ran, and no module fed its "
            "output back as its input. Pass the recurrent modules: "
            "trace(model, step_modules=[...])." + (f" {hint}" if hint else "")
        ]
    problems: list[str] = []
    if k1 is not None:
        problems += _check_stride(calls, k1)
    if k2 is not None:
        problems += _check_horizon(calls, k2, k1, leaks)
    return problems


def _is_tail(call: BackwardCall, calls: Sequence[BackwardCall], k1: int | None) -> bool:
    """The last backward of a sequence whose length is not a multiple of k1."""
    return len(calls) > 1 and call is calls[-1] and k1 is not None and 0 < call.stride < k1


def _check_stride(calls: Sequence[BackwardCall], k1: int) -> list[str]:
    bad = [c for c in calls[1:] if c.stride != k1 and not _is_tail(c, calls, k1)]
    if len(calls) == 1 and calls[0].stride != k1:
        bad = [calls[0]]
    if not bad:
        return []
    first = bad[0]
    strides = sorted({c.stride for c in bad})
    hint = ""
    if len(calls) == 1 and strides[0] > k1:
        hint = " There is a single backward after all the steps: full BPTT, no truncation."
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
    calls: Sequence[BackwardCall], k2: int, k1: int | None, leaks: Sequence[StateLeak]
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
    for c in visible[first_full + 1 :]:
        if c.horizon == k2 or (_is_tail(c, calls, k1) and c.horizon <= k2):
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
