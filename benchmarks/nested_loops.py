"""Lint generated training loops nested DEPTH loops deep: does the cost grow with the depth
like 4**depth (every pass of a loop re-interpreting the loops inside it) or slower?

    python benchmarks/nested_loops.py [--depths 2 4 6] [--tree DIR ...] [--repeats R]

Writes one file per depth (a training loop inside DEPTH loops that each compute values of
their own, as PyG's `benchmark/training/training_benchmark.py` does) and times `tbptt-lint
--isolated --no-cache --jobs 1` on each: CPU seconds of the subprocess (user + system). Each
`--tree` is a checkout whose `tbptt_lint` is run (through PYTHONPATH), the trees alternating;
without one, the installed package. Prints the medians and each depth's ratio to the first
depth. Figures are printed, never asserted (issue 13).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

INNERMOST = """\
out, hidden = model(x, hidden)
loss = (out - y).pow(2).mean()
optimizer.zero_grad()
loss.backward()
optimizer.step()
total += loss.item()
hidden = hidden.detach()
"""


def source(depth: int) -> str:
    lines = [
        "import torch",
        "",
        "",
        "def run(args, model, optimizer, loader):",
        "    total = 0",
    ]
    indent = "    "
    for level in range(depth):
        lines.append(f"{indent}for item_{level} in args.items_{level}:")
        indent += "    "
        lines.append(f"{indent}count_{level} = total + {level}")
        lines.append(f"{indent}if args.flag_{level}:")
        lines.append(f"{indent}    scale_{level} = count_{level}")
    lines.append(f"{indent}hidden = None")
    lines.append(f"{indent}for x, y in loader:")
    lines += [indent + "    " + line for line in textwrap.dedent(INNERMOST).splitlines()]
    return "\n".join(lines) + "\n"


def cpu_seconds(path: Path, tree: Path | None) -> float:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [sys.executable, "-m", "tbptt_lint", "--isolated", "--no-cache", "--jobs", "1"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([*command, str(path)], env=env, stdout=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    trees: list[Path | None] = list(args.tree) or [None]
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for depth in args.depths:
            files[depth] = Path(folder) / f"nested_{depth}.py"
            files[depth].write_text(source(depth), encoding="utf-8")
        times: dict[tuple[int, int], list[float]] = {}
        for _ in range(args.repeats):
            for depth in args.depths:
                for number, tree in enumerate(trees):
                    times.setdefault((number, depth), []).append(cpu_seconds(files[depth], tree))
    for number, tree in enumerate(trees):
        medians = {depth: statistics.median(times[(number, depth)]) for depth in args.depths}
        first = medians[args.depths[0]]
        shown = "  ".join(
            f"depth {depth}: {seconds:.2f}s ({seconds / first:.1f}x)"
            for depth, seconds in medians.items()
        )
        print(f"{tree or 'installed'}: {shown}")


if __name__ == "__main__":
    main()
