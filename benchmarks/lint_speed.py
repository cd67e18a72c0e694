"""Lint the installed torch package and print files/s and lines/s, beside ruff on the same tree.

    python benchmarks/lint_speed.py [PATH] [--jobs N] [--repeats R]

PATH defaults to the installed `torch` package (thousands of real files). Each tool runs as a
subprocess, cold (`--no-cache` for both), and the best of `--repeats` runs is reported; then
tbptt-lint runs warm (its cache filled, nothing changed) on the whole corpus and on 10 files,
the size of a pre-commit run. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import count, default_corpus  # this directory's own module


def timed(command: list[str], repeats: int) -> tuple[float, int]:
    """Best wall time of `repeats` runs, and the largest peak RSS (kB) any child reached."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path)
    parser.add_argument("--jobs", type=int, default=None, help="tbptt-lint --jobs (default: CPUs)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    corpus = args.path or default_corpus()
    files, lines = count(corpus)
    print(f"corpus: {corpus} ({files} files, {lines} lines)")

    ours = [sys.executable, "-m", "tbptt_lint", "--exit-zero", "-q"]
    if args.jobs is not None:
        ours += ["--jobs", str(args.jobs)]
    seconds, peak = timed([*ours, "--no-cache", str(corpus)], args.repeats)
    print(
        f"tbptt-lint cold: {seconds:.2f} s wall, {files / seconds:.0f} files/s, "
        f"{lines / seconds:.0f} lines/s, peak RSS of any run so far {peak / 1024:.0f} MB"
    )
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = [*ours, "--cache-dir", cache_dir]
        timed([*cached, str(corpus)], 1)  # fill the cache
        warm, _ = timed([*cached, str(corpus)], args.repeats)
        ten = [str(p) for p in sorted(corpus.rglob("*.py"))[:10]]
        timed([*cached, *ten], 1)
        warm_ten, _ = timed([*cached, *ten], args.repeats)
    print(f"tbptt-lint warm: {warm:.2f} s wall on the corpus, {warm_ten:.2f} s on 10 files")
    ruff = shutil.which("ruff")
    if ruff is None:
        print("ruff: not installed, no comparison")
        return
    ruff_seconds, _ = timed(
        [ruff, "check", "--no-cache", "--select", "ALL", "--exit-zero", "-q", str(corpus)],
        args.repeats,
    )
    print(f"ruff check --select ALL: {ruff_seconds:.2f} s wall")
    print(f"ratio tbptt-lint / ruff: {seconds / ruff_seconds:.2f}x")


if __name__ == "__main__":
    main()
