"""Replace a file's content in one step, so no reader ever sees half of it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class ChangedOnDisk(Exception):
    """The file no longer holds what was read from it: another process wrote it meanwhile."""


def replace_content(path: Path, expected: bytes, content: bytes) -> None:
    """Write `content` to `path` through a temporary file in the same directory and an atomic
    rename, keeping the file's permission bits. Raises ChangedOnDisk, leaving the file alone,
    when it no longer holds `expected` (two `--fix` runs on one tree: the later one skips the
    file instead of overwriting the other's fix with a result computed from stale text), and
    OSError when the directory is not writable. A run killed at any point leaves either the old
    or the new file, never a mix; at worst a stray temporary file."""
    path = Path(os.path.realpath(path))  # through a symlink, not over it
    mode = stat.S_IMODE(os.stat(path).st_mode)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tbptt-lint-tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if path.read_bytes() != expected:
            raise ChangedOnDisk(str(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
