"""Every row of issue 13's speed table, measured side by side in one run, as ratios.

    python benchmarks/lint_speed.py [--corpus DIR] [--loops 1250] [--jobs N] [--repeats R]

Rows (figures are printed, never asserted):
- the installed torch package, cold: tbptt-lint against `ruff check --no-cache --select ALL
  --output-format concise` (both outputs to /dev/null; ruff's default format spends most of its
  time drawing code frames, which is not linting);
- `--corpus DIR` (`realworld/speed_corpus.py DIR` builds it), the same comparison;
- each tree warm: the cache filled, nothing changed;
- one generated file of LOOPS small training loops (`huge_file.py`'s shape), cold, against a
  bare `libcst.parse_module` of it, and the same shape at half the lines;
- the peak RSS of each tbptt-lint run (its whole process tree);
- a pre-commit-like sequence on one cache: the huge file, then another file alone, then the
  huge file again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from corpus import count, default_corpus  # this directory's own modules
from huge_file import bare_parse_seconds, measured_run, source

LINT = [sys.executable, "-m", "tbptt_lint", "--isolated", "--exit-zero", "-q"]


def best(command: list[str], repeats: int) -> tuple[float, float]:
    runs = [measured_run(command) for _ in range(repeats)]
    return min(seconds for seconds, _ in runs), max(peak for _, peak in runs)


def compare_with_ruff(name: str, tree: Path, lint: list[str], repeats: int) -> None:
    files, lines = count(tree)
    ours, peak = best([*lint, "--no-cache", str(tree)], repeats)
    ruff = shutil.which("ruff")
    theirs = None
    if ruff is not None:
        command = [ruff, "check", "--no-cache", "--select", "ALL", "--output-format", "concise"]
        theirs, _ = best([*command, "--exit-zero", "-q", str(tree)], repeats)
    ratio = f"{ours / theirs:.2f}x ruff ({theirs:.2f} s)" if theirs else "ruff not installed"
    print(f"{name} ({files} files, {lines} lines), cold: {ours:.2f} s = {ratio}")
    print(f"{name}, peak memory of its largest process: {peak:.0f} MB")
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = [*lint, "--cache-dir", cache_dir, str(tree)]
        measured_run(cached)  # fill the cache
        warm, _ = best(cached, repeats)
    print(f"{name}, warm: {warm:.2f} s")


def huge_file_rows(lint: list[str], loops: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        seconds: dict[int, float] = {}
        paths: dict[int, Path] = {}
        for size in (loops // 2, loops):
            path = paths[size] = Path(folder) / f"loops_{size}.py"
            path.write_text(source(size), encoding="utf-8")
            lines = path.read_text(encoding="utf-8").count("\n")
            parse = min(bare_parse_seconds(path) for _ in range(repeats))
            seconds[size], peak = best([*lint, "--no-cache", "--jobs", "1", str(path)], repeats)
            print(
                f"one file of {size} loops ({lines} lines), cold: {seconds[size]:.2f} s = "
                f"{seconds[size] / parse:.2f}x a bare libcst parse ({parse:.2f} s); "
                f"peak {peak:.0f} MB"
            )
        print(f"twice the lines: {seconds[loops] / seconds[loops // 2]:.2f}x the time")

        other = Path(folder) / "other.py"
        other.write_text(source(3), encoding="utf-8")
        big = paths[loops]
        cache = [*lint, "--cache-dir", str(Path(folder) / "cache")]
        first, _ = measured_run([*cache, str(big)])
        between, _ = measured_run([*cache, str(other)])
        again, _ = measured_run([*cache, str(big)])
        print(
            f"big file, then another file alone, then the big file again (one cache): "
            f"{first:.2f} s, {between:.2f} s, {again:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a second tree, e.g. the speed corpus")
    parser.add_argument("--loops", type=int, default=1250)
    parser.add_argument("--jobs", type=int, default=None, help="tbptt-lint --jobs (default: CPUs)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    lint = LINT + (["--jobs", str(args.jobs)] if args.jobs is not None else [])
    print(f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M')}")
    compare_with_ruff("installed torch package", default_corpus(), lint, args.repeats)
    if args.corpus is not None:
        compare_with_ruff(f"corpus {args.corpus}", args.corpus, lint, args.repeats)
    huge_file_rows(LINT, args.loops, args.repeats)


if __name__ == "__main__":
    main()
