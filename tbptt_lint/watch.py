"""`--watch`: lint, then lint again whenever a linted file or the configuration changes.

Polling, not file-system events: it needs no extra dependency and works the same on every
platform and on network drives; a stat of each linted file twice a second is cheap next to
linting them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tbptt_lint.discovery import discover
from tbptt_lint.settings import Settings

POLL_SECONDS = 0.5
# What tells a change: a file added, removed, rewritten or resized.
Snapshot = dict[str, tuple[int, int] | None]


def watched_files(paths: Sequence[Path | str], settings: Settings) -> Snapshot:
    """The linted files and the configuration file, each with its modification time and
    size (None when it cannot be read)."""
    files = [str(path) for path in discover(paths, settings).files]
    if settings.config_path is not None:
        files.append(str(settings.config_path))
    snapshot: Snapshot = {}
    for name in files:
        try:
            status = os.stat(name)
        except OSError:
            snapshot[name] = None
        else:
            snapshot[name] = (status.st_mtime_ns, status.st_size)
    return snapshot


def watch(
    run_once: Callable[[], int],
    snapshot: Callable[[], Snapshot],
    poll_seconds: float = POLL_SECONDS,
) -> int:
    """Run `run_once` now and after every change `snapshot` sees; ends on Ctrl-C (exit 130,
    from main) or when `snapshot` fails."""
    print("Starting linter in watch mode...", file=sys.stderr, flush=True)
    before = snapshot()
    run_once()
    while True:
        time.sleep(poll_seconds)
        now = snapshot()
        if now != before:
            before = now
            print("File change detected...", file=sys.stderr, flush=True)
            run_once()
