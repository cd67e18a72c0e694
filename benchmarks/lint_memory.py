"""Peak memory of a cold tbptt-lint run on the installed torch package, summed over its processes.

    python benchmarks/lint_memory.py [PATH] [--jobs N ...] [--repeats R] [--interval S]
                                     [--timeline S]

PATH defaults to the installed `torch` package (found without importing it). For each `--jobs`
setting (default: 1, 2 and the CLI's default of one per CPU) `tbptt-lint --no-cache -q
--exit-zero PATH` runs as a subprocess while this script samples, every `--interval` seconds,
the whole process tree (the CLI, the fork server, the pool workers): the summed RSS (VmRSS of
/proc/PID/status), the summed PSS (/proc/PID/smaps_rollup, which counts a page shared by
several processes once, in shares: fork-server workers share pages with their parent, so the
summed RSS counts those pages twice) and the largest single process. Only /proc is read, so
nothing needs installing; Linux only. Samples can miss a spike shorter than the interval; the
kernel's per-process high-water mark (VmHWM) is reported too, and it misses nothing. The summed
peak depends on which files the workers happen to parse at the same moment, so it varies from
run to run: `--repeats` runs each setting again and prints the range. Figures are printed,
never asserted; the ratio to the 300 MB goal of issue 5 is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from corpus import count, default_corpus  # this directory's own module

GOAL_MB = 300.0
KB_PER_MB = 1024.0


def lint_command() -> list[str]:
    """The `tbptt-lint` script of this interpreter's environment, else `python -m tbptt_lint`."""
    script = Path(sys.executable).parent / "tbptt-lint"
    if script.is_file():
        return [str(script)]
    found = shutil.which("tbptt-lint")
    return [found] if found else [sys.executable, "-m", "tbptt_lint"]


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:  # the process ended between listing and reading
        return None


def _parent_map() -> dict[int, list[int]]:
    """Children of every process, from /proc/PID/stat (the kernel may lack .../children)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if stat is None:
            continue
        # Field 4 is the parent; the command name (field 2) may hold spaces, so split after it.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def _has_children_files() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def tree(root: int, use_children_files: bool) -> list[int]:
    """`root` and all its descendants."""
    if use_children_files:
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for task in tasks:
                text = _read(f"/proc/{pid}/task/{task}/children") or ""
                todo.extend(int(child) for child in text.split())
        return found
    children = _parent_map()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _status_kb(pid: int) -> dict[str, int]:
    text = _read(f"/proc/{pid}/status") or ""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def _pss_kb(pid: int) -> int | None:
    text = _read(f"/proc/{pid}/smaps_rollup")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


@dataclass
class Peaks:
    seconds: float = 0.0
    samples: int = 0
    rss_kb: int = 0  # largest summed RSS of one sample
    rss_at: float = 0.0  # when, seconds after the start
    rss_parts: list[int] = field(default_factory=list)  # each process's RSS in that sample
    pss_kb: int = 0
    pss_at: float = 0.0
    single_kb: int = 0  # largest RSS of one process in one sample
    hwm_kb: int = 0  # largest VmHWM of one process (never misses a spike)
    hwm_by_pid: dict[int, int] = field(default_factory=dict)  # the last VmHWM read of each
    returncode: int = 0
    timeline: list[tuple[float, int, int, int, int]] = field(default_factory=list)


def measure(command: list[str], interval: float, timeline_every: float | None) -> Peaks:
    use_children_files = _has_children_files()
    peaks = Peaks()
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        next_line = 0.0
        while True:
            # wait4 rather than poll: it also gives the CLI's own high-water mark once it ends.
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            finished = pid != 0
            now = time.perf_counter() - started
            pids = [] if finished else tree(process.pid, use_children_files)
            rss = pss = single = 0
            parts = []
            for member in pids:
                values = _status_kb(member)
                if not values:
                    continue
                parts.append(values.get("VmRSS", 0))
                rss += parts[-1]
                single = max(single, values.get("VmRSS", 0))
                peaks.hwm_by_pid[member] = values.get("VmHWM", 0)
                pss += _pss_kb(member) or 0
            peaks.samples += 1
            if rss > peaks.rss_kb:
                peaks.rss_kb, peaks.rss_at, peaks.rss_parts = rss, now, parts
            if pss > peaks.pss_kb:
                peaks.pss_kb, peaks.pss_at = pss, now
            peaks.single_kb = max(peaks.single_kb, single)
            if timeline_every is not None and now >= next_line and pids:
                peaks.timeline.append((now, len(pids), rss, pss, single))
                next_line = now + timeline_every
            if finished:
                break
            time.sleep(interval)
        peaks.seconds = time.perf_counter() - started
        process.returncode = peaks.returncode = os.waitstatus_to_exitcode(status)
        peaks.hwm_by_pid[process.pid] = usage.ru_maxrss  # kB on Linux
        if peaks.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace").strip()
            print(f"  exit status {peaks.returncode}: {text[-500:]}")
    peaks.hwm_kb = max(peaks.hwm_by_pid.values(), default=0)
    return peaks


def mb(kb: int) -> str:
    return f"{kb / KB_PER_MB:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path)
    parser.add_argument(
        "--jobs",
        type=int,
        action="append",
        help="a tbptt-lint --jobs setting, repeatable; 0 means the CLI's default "
        "(default: 1, 2 and 0)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between samples")
    parser.add_argument(
        "--timeline", type=float, metavar="S", help="also print a sample every S seconds"
    )
    args = parser.parse_args()
    corpus = args.path or default_corpus()
    files, lines = count(corpus)
    print(f"corpus: {corpus} ({files} files, {lines} lines)")
    print(f"CPUs available: {len(os.sched_getaffinity(0))}; sampling every {args.interval} s")
    print(f"goal (issue 5): at most {GOAL_MB:.0f} MB in all")
    base = [*lint_command(), "--no-cache", "-q", "--exit-zero"]
    for jobs in args.jobs or [1, 2, 0]:
        command = [*base, *(["--jobs", str(jobs)] if jobs else []), str(corpus)]
        label = f"--jobs {jobs}" if jobs else "default jobs (one per CPU)"
        print(f"\n{label}: {' '.join(command)}")
        runs = []
        for run in range(args.repeats):
            if args.repeats > 1:
                print(f" run {run + 1} of {args.repeats}")
            runs.append(measure(command, args.interval, args.timeline))
            report(runs[-1], files)
        if args.repeats > 1:
            rss = sorted(peaks.rss_kb for peaks in runs)
            pss = sorted(peaks.pss_kb for peaks in runs)
            best = min(peaks.seconds for peaks in runs)
            print(
                f" over {args.repeats} runs: peak summed RSS {mb(rss[0])} to {mb(rss[-1])} "
                f"(worst {rss[-1] / KB_PER_MB / GOAL_MB:.2f}x the goal), "
                f"peak summed PSS {mb(pss[0])} to {mb(pss[-1])} "
                f"(worst {pss[-1] / KB_PER_MB / GOAL_MB:.2f}x), "
                f"best wall {best:.2f} s, {files / best:.0f} files/s"
            )


def report(peaks: Peaks, files: int) -> None:
    print(
        f"  wall {peaks.seconds:.2f} s, {files / peaks.seconds:.0f} files/s, "
        f"{peaks.samples} samples, {len(peaks.hwm_by_pid)} processes seen"
    )
    parts = " + ".join(f"{kb / KB_PER_MB:.0f}" for kb in peaks.rss_parts)
    print(
        f"  peak summed RSS {mb(peaks.rss_kb)} at {peaks.rss_at:.1f} s "
        f"({len(peaks.rss_parts)} processes, CLI first: {parts}), "
        f"{peaks.rss_kb / KB_PER_MB / GOAL_MB:.2f}x the goal"
    )
    print(
        f"  peak summed PSS {mb(peaks.pss_kb)} at {peaks.pss_at:.1f} s, "
        f"{peaks.pss_kb / KB_PER_MB / GOAL_MB:.2f}x the goal"
    )
    print(f"  peak single process RSS {mb(peaks.single_kb)} sampled, {mb(peaks.hwm_kb)} by VmHWM")
    for now, processes, rss, pss, single in peaks.timeline:
        print(
            f"    {now:6.1f} s  {processes} processes  RSS {mb(rss):>7}  PSS {mb(pss):>7}  "
            f"largest {mb(single):>7}"
        )


if __name__ == "__main__":
    main()
