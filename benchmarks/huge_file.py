"""Lint one generated file of many small training loops: is the linter linear in the file?

    python benchmarks/huge_file.py [--loops 1250] [--tree DIR ...] [--repeats R]

Writes files of LOOPS/2 and LOOPS loops (16 lines each, a third of them buggy) to a temporary
folder and, for each, times a bare `libcst.parse_module` of it and `tbptt-lint --no-cache
--jobs 1` on it (a subprocess, with its peak RSS). Each `--tree` is a checkout whose
`tbptt_lint` is run (through PYTHONPATH), side by side in the same run; without one, the
installed package; with `--repeats`, the trees' runs alternate and the medians are printed,
each run's ratio taken against a bare parse just before it. Figures are printed, never
asserted. Issue 13's goals: the lint at most 3x the bare parse, and at most 2.4x the time for
twice the lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst

HEADER = "import torch\nimport torch.nn as nn\n"
# 16 lines; `{cut}` is a correct cut or, in every third loop, a comment (TBP001).
LOOP = """\


def train_{n}(rnn, batches, opt, epochs=1):
    hidden = None
    for epoch in range(epochs):
        for x, y in batches:
            out, hidden = rnn(x, hidden)
            loss = ((out - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            {cut}
            if epoch == epochs - 1:
                print(loss.item())
    return hidden
"""
CUT = "hidden = tuple(h.detach() for h in hidden)"
NO_CUT = "# the state is carried on uncut"


def source(loops: int) -> str:
    blocks = [LOOP.format(n=n, cut=NO_CUT if n % 3 == 0 else CUT) for n in range(loops)]
    return HEADER + "".join(blocks)


def bare_parse_seconds(path: Path) -> float:
    text = path.read_text(encoding="utf-8")
    started = time.perf_counter()
    libcst.parse_module(text)
    return time.perf_counter() - started


def measured_run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one run, output discarded. The peak is the largest of
    the process and its children (a worker pool), read in a wrapper process of its own so
    that runs do not mix. A run that fails (an internal error exits 2, even with
    --exit-zero) raises with the end of its stderr: a crash is not a fast run."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "run = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
        "seconds = time.perf_counter() - t; sys.stderr.buffer.write(run.stderr[-2000:]); "
        "print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, run.returncode)"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True
    )
    seconds, peak_kb, status = done.stdout.split()
    if status != "0":
        raise RuntimeError(f"{' '.join(command)} exited {status}:\n{done.stderr}")
    return float(seconds), int(peak_kb) / 1024


def lint(path: Path, tree: Path | None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one cold run in a fresh process."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [sys.executable, "-m", "tbptt_lint", "--isolated", "--no-cache", "--jobs", "1"]
    return measured_run([*command, "--exit-zero", "-q", str(path)], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=1250)
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each tree, alternated; medians shown"
    )
    args = parser.parse_args()
    trees: list[Path | None] = list(args.tree) or [None]
    with tempfile.TemporaryDirectory() as folder:
        sizes = {}
        for loops in (args.loops // 2, args.loops):
            path = Path(folder) / f"loops_{loops}.py"
            path.write_text(source(loops), encoding="utf-8")
            sizes[loops] = path
        # (tree, loops) -> [(lint seconds, bare parse seconds of the same turn, peak MB)]
        runs: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
        for _ in range(args.repeats):
            for number, tree in enumerate(trees):
                for loops, path in sizes.items():
                    parse = bare_parse_seconds(path)
                    seconds, peak = lint(path, tree)
                    runs.setdefault((number, loops), []).append((seconds, parse, peak))
        for number, tree in enumerate(trees):
            name = str(tree) if tree is not None else "installed tbptt_lint"
            for loops, path in sizes.items():
                lines = path.read_text(encoding="utf-8").count("\n")
                done = runs[number, loops]
                seconds = statistics.median(s for s, _, _ in done)
                parse = statistics.median(p for _, p, _ in done)
                ratio = statistics.median(s / p for s, p, _ in done)
                print(
                    f"{name}: {loops} loops, {lines} lines: lint {seconds:.2f} s, bare "
                    f"parse {parse:.2f} s ({ratio:.2f}x), peak {max(m for _, _, m in done):.0f} "
                    f"MB (medians of {len(done)})"
                )
            small, large = sorted(sizes)
            twice = statistics.median(
                a[0] / b[0] for a, b in zip(runs[number, large], runs[number, small], strict=True)
            )
            print(f"{name}: twice the lines took {twice:.2f}x the time")


if __name__ == "__main__":
    main()
