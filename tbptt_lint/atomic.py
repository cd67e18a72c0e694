"""Replace a file's content in one step, so no reader ever sees half of it."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

TEMPORARY_SUFFIX = ".tbptt-lint-tmp"
# `.<name>.<pid>.<token>.tbptt-lint-tmp`: the pid tells whether its writer is still running.
TEMPORARY_NAME = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+" + re.escape(TEMPORARY_SUFFIX) + "$")


class ChangedOnDisk(Exception):
    """The file no longer holds what was read from it: another process wrote it meanwhile."""


def replace_content(path: Path, expected: bytes, content: bytes) -> None:
    """Write `content` to `path` through a temporary file in the same directory and an atomic
    rename, keeping the file's permission bits. Raises ChangedOnDisk, leaving the file alone,
    when it no longer holds `expected` (two `--fix` runs on one tree: the later one skips the
    file instead of overwriting the other's fix with a result computed from stale text), and
    OSError when the directory is not writable.

    A run killed at any point leaves either the old or the new file, never a mix; a kill
    during the write leaves a hidden temporary file (never a `.py`, so never linted), which
    the next fix in that directory removes once its writer is gone."""
    path = Path(os.path.realpath(path))  # through a symlink, not over it
    mode = stat.S_IMODE(os.stat(path).st_mode)
    remove_abandoned_temporaries(path.parent)
    name = _temporary_name(path)
    descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(descriptor, content, mode)
        finally:
            os.close(descriptor)
        if path.read_bytes() != expected:
            raise ChangedOnDisk(str(path))
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def _temporary_name(path: Path) -> Path:
    import secrets  # only writing needs it, not a run that reports

    token = secrets.token_hex(4)
    return path.parent / f".{path.name}.{os.getpid()}.{token}{TEMPORARY_SUFFIX}"


def _write_all(descriptor: int, content: bytes, mode: int) -> None:
    os.fchmod(descriptor, mode)  # exactly the old file's bits, whatever the umask
    view = memoryview(content)
    while view:
        view = view[os.write(descriptor, view) :]
    os.fsync(descriptor)


def remove_abandoned_temporaries(directory: Path) -> None:
    """Delete temporaries left in `directory` by fix runs that were killed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = TEMPORARY_NAME.match(name)
        if match is None or _running(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(directory / name)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True
