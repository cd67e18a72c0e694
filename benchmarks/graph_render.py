"""Benchmark save_graph: the condensed view against torchviz + Graphviz, on real RNNCell graphs.

    python benchmarks/graph_render.py [--steps 50 500 5000] [--timeout 60]

For each length, one RNNCell loop of that many steps is run with a loss at every step and no
truncation, so the single backward's graph spans every step (the worst case for drawing). The
condensed view is timed through `save_graph(..., view="condensed")`; torchviz is timed as
`make_dot` plus rendering the DOT, with the renderer stopped after --timeout seconds. Prints
seconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from tbptt_lint.tracer import render
from tbptt_lint.tracer.graph_image import save_graph
from tbptt_lint.tracer.records import BackwardCall, StepRecord, TraceSummary
from tbptt_lint.tracer.torchviz_compat import dot_source_for


def rnn_loop(steps: int, hidden: int = 16):
    """Loss tensor, the cell, and node id -> step for an un-truncated RNNCell loop."""
    torch.manual_seed(0)
    cell = torch.nn.RNNCell(8, hidden)
    h = torch.zeros(1, hidden)
    outputs = []
    node_steps: dict[int, int] = {}
    for t in range(steps):
        h = cell(torch.randn(1, 8), h)
        outputs.append(h)
        stack = [h.grad_fn]  # this step's nodes: stop at nodes an earlier step already claimed
        while stack:
            fn = stack.pop()
            if fn is None or id(fn) in node_steps or type(fn).__name__ == "AccumulateGrad":
                continue
            node_steps[id(fn)] = t
            stack.extend(n for n, _ in fn.next_functions)
    loss = torch.stack(outputs).sum()
    return loss, cell, outputs, node_steps


def summary_for(steps: int, nodes: int) -> TraceSummary:
    call = BackwardCall(
        index=0,
        step=steps,
        stride=steps,
        horizon=steps,
        graph_nodes=nodes,
        saved_bytes=nodes * 64,
        reached_steps=tuple(range(steps)),
        state_links=tuple((t - 1, t) for t in range(1, steps)),
    )
    return TraceSummary(calls=[call], steps=[StepRecord(i, "cell", True) for i in range(steps)])


def time_condensed(steps: int, nodes: int, out: Path, fmt: str) -> str:
    start = time.perf_counter()
    save_graph(summary_for(steps, nodes), out / f"condensed_{steps}.{fmt}", view="condensed")
    return f"{time.perf_counter() - start:.2f}"


def time_torchviz(loss, cell, node_steps, timeout: float, fmt: str) -> tuple[str, str]:
    start = time.perf_counter()
    try:
        dot = dot_source_for([loss], node_steps, set(), params=dict(cell.named_parameters()))
    except RecursionError:
        return "RecursionError", "-"
    made = time.perf_counter() - start
    start = time.perf_counter()
    try:
        render.render_dot(dot, fmt, timeout=timeout)
    except render.RenderTimeout:
        return f"{made:.2f}", f"did not finish in {timeout:g} s"
    return f"{made:.2f}", f"{time.perf_counter() - start:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--format", default="svg", choices=["svg", "png"])
    args = parser.parse_args(argv)
    renderer = render.find_renderer()
    if renderer is None:
        print("no renderer: " + render.INSTALL_HINT, file=sys.stderr)
        return 1
    print(
        f"renderer: {renderer.name} ({renderer.path}); format {args.format}; "
        f"torch {torch.__version__}; python {sys.version.split()[0]}"
    )
    header = ("steps", "grad nodes", "condensed s", "make_dot s", "torchviz render s")
    print("  ".join(f"{h:>17}" for h in header))
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            loss, cell, outputs, node_steps = rnn_loop(steps)
            condensed = time_condensed(steps, len(node_steps), Path(tmp), args.format)
            made, rendered = time_torchviz(loss, cell, node_steps, args.timeout, args.format)
            row = (str(steps), str(len(node_steps)), condensed, made, rendered)
            print("  ".join(f"{c:>17}" for c in row), flush=True)
            del loss, outputs
    return 0


if __name__ == "__main__":
    sys.exit(main())
