"""Synthetic trace summaries for the report and picture tests (no torch needed)."""

from __future__ import annotations

from tbptt_lint.tracer.records import BackwardCall, StepRecord, TraceSummary


def synth(
    n_steps: int,
    k: int,
    pattern: str = "tbptt",
    *,
    nodes_per_step: int = 7,
    bytes_per_step: int = 4096,
) -> TraceSummary:
    """Windows of `k` steps, one backward after each, per-step losses.

    pattern: "tbptt" (state detached between windows), "leak" (never detached),
    "every" (detached at every step).
    """
    calls = []
    for index, end in enumerate(range(k, n_steps + 1, k)):
        start = end - k
        if pattern == "leak":
            reached = tuple(range(0, end))
            links = tuple((s - 1, s) for s in range(1, end))
            horizon = end
        elif pattern == "every":
            reached = tuple(range(start, end))
            links = ()
            horizon = 1
        else:
            reached = tuple(range(start, end))
            links = tuple((s - 1, s) for s in range(start + 1, end))
            horizon = k
        calls.append(
            BackwardCall(
                index=index,
                step=end,
                stride=k,
                horizon=horizon,
                graph_nodes=len(reached) * nodes_per_step,
                saved_bytes=len(reached) * bytes_per_step,
                reached_steps=reached,
                state_links=links,
            )
        )
    steps = [StepRecord(i, "cell", True) for i in range(n_steps)]
    verdict = "ok" if pattern == "tbptt" else f"failed: expected horizon {k}"
    findings = [] if pattern == "tbptt" else [f"The {pattern} pattern was seen."]
    return TraceSummary(
        calls=calls, steps=steps, findings=findings, expected_k1=k, expected_k2=k, verdict=verdict
    )
