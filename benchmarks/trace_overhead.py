"""How much the tracer costs: traced / untraced wall time, and graph-walk time per node.

LSTMCell loops of 1000 and 5000 steps with one backward at the end (the worst case for the
walk: one graph holding every step). Walk times are the best of the repeats, split by phase
(discover: the one pass over the Node objects, saved tensors included; order: topological
order and the step above each node; horizon: the longest-path DP; finish: leaves and the
snapshot). Also `save_graph` at 50, 500 and 5000 steps, condensed against torchviz where
torchviz is tried. Prints figures; asserts nothing.

    python benchmarks/trace_overhead.py [--steps 1000 5000] [--repeats 3] [--no-graphs]
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tbptt_lint.tracer import graph_walk, trace

# Older walks take no `timings`: then phases are not shown (to compare with a checkout of one).
_PHASES = "timings" in inspect.signature(graph_walk.walk_graph).parameters


def lstm_loop(steps: int, hidden: int = 64, batch: int = 8) -> Callable[[], None]:
    torch.manual_seed(0)
    cell = nn.LSTMCell(32, hidden)
    x = torch.randn(steps, batch, 32)

    def run() -> None:
        h = torch.zeros(batch, hidden)
        c = torch.zeros(batch, hidden)
        loss = torch.zeros(())
        for t in range(steps):
            h, c = cell(x[t], (h, c))
            loss = loss + h.pow(2).mean()
        loss.backward()
        cell.zero_grad(set_to_none=True)

    return run


class _WalkTimer:
    """Wrap graph_walk.walk_graph (as the session imports it) to time the walks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.nodes = 0
        self.phases: dict[str, float] = {}

    def __enter__(self) -> _WalkTimer:
        from tbptt_lint.tracer import session

        self._original = session.walk_graph

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            if _PHASES:
                kwargs["timings"] = self.phases
            start = time.perf_counter()
            result = self._original(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.nodes += result.node_count
            return result

        session.walk_graph = timed
        return self

    def __exit__(self, *exc: object) -> None:
        from tbptt_lint.tracer import session

        session.walk_graph = self._original


def sync() -> None:
    """Wait for queued GPU work, so that wall times cover it."""
    if torch.cuda.is_available() and torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()


def best_of(fn: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def phase_split(phases: dict[str, float]) -> str:
    if not phases:
        return "no phase timings"
    return ", ".join(f"{name} {seconds * 1e3:.1f}" for name, seconds in phases.items()) + " ms"


def overhead(steps: int, repeats: int) -> None:
    run = lstm_loop(steps)
    run()  # warm up allocators and kernels
    plain = best_of(run, repeats)
    traced_times, backward_s = [], 0.0
    best: _WalkTimer | None = None
    for _ in range(repeats):
        with _WalkTimer() as timer:
            sync()
            start = time.perf_counter()
            with trace(None) as t:
                run()
            sync()
            traced_times.append(time.perf_counter() - start)
        if best is None or timer.seconds < best.seconds:
            best = timer
    assert best is not None
    walk_s, nodes = best.seconds, best.nodes
    # Backward alone, untraced, for the "walk under 10% of backward" figure.
    torch.manual_seed(0)
    cell = nn.LSTMCell(32, 64)
    x = torch.randn(steps, 8, 32)
    h = torch.zeros(8, 64)
    c = torch.zeros(8, 64)
    loss = torch.zeros(())
    for i in range(steps):
        h, c = cell(x[i], (h, c))
        loss = loss + h.pow(2).mean()
    sync()
    start = time.perf_counter()
    loss.backward()
    sync()
    backward_s = time.perf_counter() - start
    traced = min(traced_times)
    call = t.calls[-1]
    print(
        f"LSTMCell {steps:5d} steps: untraced {plain * 1e3:8.1f} ms, "
        f"traced {traced * 1e3:8.1f} ms, "
        f"ratio {traced / plain:5.2f}x | walk {walk_s * 1e3:7.1f} ms for {nodes} nodes "
        f"({walk_s / max(nodes, 1) * 1e6:.2f} us/node), {walk_s / backward_s * 100:5.1f}% of the "
        f"backward ({backward_s * 1e3:.1f} ms) | horizon {call.horizon}"
    )
    print(f"  walk phases: {phase_split(best.phases)}")


def walk_only(steps: int, repeats: int) -> None:
    """Walk time without saved-bytes accounting, to show what that part costs. The garbage
    collector is paused, as the tracer pauses it around its walks."""
    from tbptt_lint.tracer.session import _gc_paused

    torch.manual_seed(0)
    cell = nn.LSTMCell(32, 64)
    x = torch.randn(steps, 8, 32)
    h = torch.zeros(8, 64)
    c = torch.zeros(8, 64)
    loss = torch.zeros(())
    for i in range(steps):
        h, c = cell(x[i], (h, c))
        loss = loss + h.pow(2).mean()
    for measure in (True, False):
        took, phases = float("inf"), {}
        for _ in range(repeats):
            timings: dict[str, float] = {}
            extra = {"timings": timings} if _PHASES else {}
            with _gc_paused():
                start = time.perf_counter()
                result = graph_walk.walk_graph(
                    [loss.grad_fn], lambda node: None, measure_saved=measure, **extra
                )
                seconds = time.perf_counter() - start
            if seconds < took:
                took, phases = seconds, timings
        print(
            f"  walk of {result.node_count} nodes, measure_saved={measure}: {took * 1e3:.1f} ms "
            f"({took / result.node_count * 1e6:.2f} us/node; {phase_split(phases)})"
        )


def graphs(step_counts: list[int]) -> None:
    from tbptt_lint.tracer.graph_image import save_graph

    for steps in step_counts:
        run = lstm_loop(steps, hidden=16, batch=2)
        with trace(None, dot_node_limit=10**9 if steps <= 50 else 400) as t:
            run()
        summary = t.summary()
        with tempfile.TemporaryDirectory() as tmp:
            for view in ("condensed", "torchviz"):
                if view == "torchviz" and summary.calls[-1].snapshot.dot_source is None:
                    print(f"  save_graph {steps:5d} steps, torchviz: skipped (graph too big)")
                    continue
                start = time.perf_counter()
                try:
                    save_graph(summary, Path(tmp) / f"g_{view}.svg", view=view, timeout=120)
                    took = f"{(time.perf_counter() - start):.2f} s"
                except Exception as exc:  # noqa: BLE001 - report, don't stop
                    took = f"failed ({type(exc).__name__}: {str(exc)[:80]})"
                print(f"  save_graph {steps:5d} steps, {view:9s}: {took}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-graphs", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_default_device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    for steps in args.steps:
        overhead(steps, args.repeats)
    walk_only(max(args.steps), args.repeats)
    if not args.no_graphs:
        graphs([50, 500, 5000])


if __name__ == "__main__":
    main()
