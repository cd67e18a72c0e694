"""Big graphs: the walk visits them whole, and freeing them afterwards must not crash.

On torch 2.13, freeing a graph whose nodes Python has visited recurses once per node
(node_keeper explains it); an LSTMCell graph of 5000+ steps overflowed the default 8 MiB
stack. These scripts run at that stack limit, in a child process, so a crash shows up as an
exit code instead of killing the test run.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from tbptt_lint.tracer import node_keeper  # noqa: E402
from tbptt_lint.tracer.assertions import check_tbptt  # noqa: E402
from tbptt_lint.tracer.records import BackwardCall  # noqa: E402


def test_the_safe_free_size_follows_the_stack_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_keeper, "_preserved", True)
    limits = {"soft": 8 << 20}
    monkeypatch.setattr(
        resource, "getrlimit", lambda which: (limits["soft"], resource.RLIM_INFINITY)
    )
    assert node_keeper.safe_free_nodes() == node_keeper.SAFE_FREE_NODES
    limits["soft"] = 64 << 20
    assert node_keeper.safe_free_nodes() == 8 * node_keeper.SAFE_FREE_NODES
    limits["soft"] = resource.RLIM_INFINITY
    assert node_keeper.safe_free_nodes() == sys.maxsize


def test_torch_builds_without_preserved_node_objects_free_anything_safely(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_keeper, "_preserved", False)
    assert node_keeper.safe_free_nodes() == sys.maxsize


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


STEPS = 6000  # about 90,000 nodes: an unordered free of the walked graph crashed from ~5000

SCRIPT = textwrap.dedent(
    """
    import resource, sys, torch
    from tbptt_lint import trace
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, hard))  # the usual default
    mode, steps, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) or None
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(4, 8)
    x = torch.randn(2, 4)

    def train(windows, window, cut):
        h, c = torch.zeros(2, 8), torch.zeros(2, 8)
        for _ in range(windows):
            for _ in range(window):
                h, c = cell(x, (h, c))
            h.sum().backward(retain_graph=not cut)
            if cut:
                h, c = h.detach(), c.detach()
        return h, c

    with trace(cell, max_walk_nodes=limit) as t:
        if mode == "returned":  # the graph dies with the function, inside the trace
            train(1, steps, cut=False)
        elif mode == "leak":  # never cut: every window's graph contains the earlier ones
            train(3, steps // 3, cut=False)
        else:  # "kept" and "kept-to-exit": the program holds the graph after the trace
            h, c = train(1, steps, cut=False)
    print(*[k.horizon for k in t.calls], t.calls[-1].walk_limited, flush=True)
    if mode == "kept":
        del h, c
        with trace(cell):  # a later trace releases what the first had to leave
            pass
    print("freed", flush=True)
    """
)


def run_script(mode: str, steps: int = STEPS, limit: int = 0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(steps), str(limit)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("mode", "horizons"),
    [
        ("returned", [STEPS]),
        ("leak", [STEPS // 3, 2 * STEPS // 3, STEPS]),
        ("kept", [STEPS]),
        ("kept-to-exit", [STEPS]),
    ],
)
def test_a_big_graph_is_walked_whole_and_freed_without_a_crash(
    mode: str, horizons: list[int]
) -> None:
    if mode != "leak" and not node_keeper.python_objects_preserved():
        # The keeper is off on this build (freeing a walked graph does not recurse here), so
        # the four ways of keeping the graph are one path: "leak" runs it.
        pytest.skip("node objects are not preserved on this torch build")
    run = run_script(mode)
    assert run.returncode == 0, f"exit code {run.returncode}: {run.stderr[-2000:]}"
    lines = run.stdout.split("\n")
    assert lines[0].split() == [*map(str, horizons), "False"]
    assert lines[1] == "freed"


def test_an_explicit_limit_gives_a_lower_bound() -> None:
    run = run_script("returned", steps=3000, limit=1000)
    assert run.returncode == 0, run.stderr[-2000:]
    horizon, limited = run.stdout.split()[:2]
    assert limited == "True" and 0 < int(horizon) < 3000
