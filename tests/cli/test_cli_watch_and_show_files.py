"""`--show-files` lists what would be linted; `--watch` lints again when a file changes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import TBP001_SNIPPET, write

ROOT = Path(__file__).resolve().parents[2]
# How long to wait for the watcher's next report before failing (it polls twice a second).
REPORT_WAIT_SECONDS = 60


def test_show_files_prints_the_files_to_lint_and_exits(cli, project):
    write(project / "src" / "b.py", "bug_call()\n")
    write(project / "src" / "a.py", "")
    write(project / "build" / "c.py", "")
    run = cli("--show-files", "--extend-exclude", "b.py", ".")
    assert run.code == 0
    assert run.out.splitlines() == [str(project / "src" / "a.py")]


def test_show_files_honours_force_exclude(cli, project):
    write(project / "build" / "c.py", "")
    assert cli("--show-files", "build/c.py").out.strip() == str(project / "build" / "c.py")
    assert cli("--show-files", "--force-exclude", "build/c.py").out == ""


def _lines(stream, into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _wait_for(
    watcher: subprocess.Popen[str], lines: queue.Queue[str], text: str, seen: list[str]
) -> None:
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if watcher.poll() is not None and lines.empty():
                break  # it stopped instead of watching
            continue
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"no {text!r} from the watcher; it printed:\n{''.join(seen)}")


def test_watch_lints_again_after_a_change(project):
    path = write(project / "train.py", "x = 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "tbptt_lint", "--watch", "--no-cache", "--jobs", "1", "."],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(watcher.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(watcher, lines, "All checks passed!", seen)
        path.write_text(TBP001_SNIPPET)
        _wait_for(watcher, lines, "File change detected", seen)
        _wait_for(watcher, lines, "Found 1 error.", seen)
        assert any("train.py:8:" in line and "TBP001" in line for line in seen), seen
    finally:
        watcher.kill()
        watcher.wait()
