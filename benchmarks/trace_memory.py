"""Memory of a long traced run with correct TBPTT: it should stay flat.

    python benchmarks/trace_memory.py [--steps 100000] [--window 10]

An RNNCell loop with a cut and a backward every `window` steps runs under `trace` for `steps`
steps. The resident set size and the tracer's own record count are printed every tenth of
the run; the first and last figures are compared at the end. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from tbptt_lint import trace


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cell = torch.nn.RNNCell(8, 16)
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.01)
    x = torch.randn(args.window, 4, 8)
    h = torch.zeros(4, 16)
    samples: list[tuple[int, float, int]] = []
    started = time.perf_counter()
    with trace(cell) as t:
        for start in range(0, args.steps, args.window):
            h = h.detach()
            loss = torch.zeros(())
            for step in range(args.window):
                h = cell(x[step], h)
                loss = loss + h.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if start % (args.steps // 10) == 0:
                samples.append((start, rss_mb(), len(t.calls)))
    took = time.perf_counter() - started
    for step, rss, calls in samples:
        print(f"step {step:7d}: RSS {rss:7.1f} MB, backward calls recorded {calls}")
    print(
        f"{args.steps} steps in {took:.1f} s; RSS from step {samples[1][0]} to the end grew "
        f"{samples[-1][1] - samples[1][1]:+.1f} MB; horizons seen: "
        f"{sorted({c.horizon for c in t.calls})}"
    )


if __name__ == "__main__":
    main()
