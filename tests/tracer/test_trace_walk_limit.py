"""The graph walk's node limit: it follows the stack limit, marks a horizon as a lower bound,
and `assert_tbptt` does not draw conclusions a lower bound cannot support."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from tbptt_lint.tracer import graph_walk  # noqa: E402
from tbptt_lint.tracer.assertions import check_tbptt  # noqa: E402
from tbptt_lint.tracer.records import BackwardCall  # noqa: E402


def test_the_limit_follows_the_stack_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    limits = {"soft": 8 << 20}
    monkeypatch.setattr(
        resource, "getrlimit", lambda which: (limits["soft"], resource.RLIM_INFINITY)
    )
    assert graph_walk.default_walk_limit() == graph_walk.MAX_WALK_NODES
    limits["soft"] = 64 << 20
    assert graph_walk.default_walk_limit() == 8 * graph_walk.MAX_WALK_NODES
    limits["soft"] = resource.RLIM_INFINITY
    assert graph_walk.default_walk_limit() == sys.maxsize


def test_torch_builds_before_the_crash_walk_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "__version__", "2.11.0+cu130")
    assert graph_walk.default_walk_limit() == sys.maxsize


def call(index: int, horizon: int, limited: bool) -> BackwardCall:
    return BackwardCall(
        index=index,
        step=10 * (index + 1),
        stride=10,
        horizon=horizon,
        graph_nodes=1000,
        saved_bytes=0,
        walk_limited=limited,
    )


def test_a_lower_bound_at_or_below_k2_proves_nothing() -> None:
    problems = check_tbptt([call(0, 10, True), call(1, 8, True)], k1=10, k2=10)
    assert len(problems) == 1 and "cannot be checked" in problems[0]


def test_a_lower_bound_above_k2_still_fails() -> None:
    problems = check_tbptt([call(0, 10, False), call(1, 25, True)], k1=10, k2=10)
    assert len(problems) == 1 and "reached back 25 steps" in problems[0]


SCRIPT = textwrap.dedent(
    """
    import resource, sys, torch
    from tbptt_lint import trace
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if sys.argv[1] == "raise":
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(4, 8)
    h, c, x = torch.zeros(2, 8), torch.zeros(2, 8), torch.randn(2, 4)
    with trace(cell, max_walk_nodes=int(sys.argv[2]) or None) as t:
        for _ in range(3000):
            h, c = cell(x, (h, c))
        h.sum().backward()
        del h, c
    print(t.calls[0].horizon, t.calls[0].walk_limited)
    """
)


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_STACK)[1] != resource.RLIM_INFINITY,
    reason="needs a hard stack limit that can be raised",
)
def test_a_raised_stack_limit_walks_a_big_graph_whole_and_frees_it() -> None:
    run = run_script("raise", "0")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["3000", "False"]


def test_an_explicit_limit_gives_a_lower_bound() -> None:
    run = run_script("keep", "1000")
    assert run.returncode == 0, run.stderr[-2000:]
    horizon, limited = run.stdout.split()
    assert limited == "True" and 0 < int(horizon) < 3000
