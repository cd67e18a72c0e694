"""Bring the files the linter reads out of fetched repository snapshots.

A snapshot is the bare git directory that the project's `fetch` tool leaves under
`/work/.mirror/<owner>+<name>/repo` (or `repo/.git` when the snapshot is a clone with a work
tree). Only what a user's `tbptt-lint .` would read is written: `.py` and `.ipynb` files and the
`.gitignore` files that steer discovery. Symbolic links are left out, and so are blobs the
snapshot lacks (files of 4 MiB and more are not stored).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DEFAULT_MIRRORS = Path(os.environ.get("TBPTT_MIRRORS", "/work/.mirror"))
WANTED_SUFFIXES = (".py", ".ipynb")
COMPLETE_MARK = ".tbptt-extracted"


class SnapshotMissing(Exception):
    """The repository has not been fetched, or lacks the commit."""


def git_dir(repo: str, mirrors: Path = DEFAULT_MIRRORS) -> Path:
    """The git directory of `owner/name`'s snapshot."""
    base = mirrors / repo.replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise SnapshotMissing(f"{repo} is not fetched (fetch github:{repo})")


def has_commit(git: Path, commit: str) -> bool:
    run = subprocess.run(
        ["git", f"--git-dir={git}", "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return run.returncode == 0


def _wanted(path: str) -> bool:
    return path.endswith(WANTED_SUFFIXES) or path.rsplit("/", 1)[-1] == ".gitignore"


def _tree_blobs(git: Path, commit: str) -> list[tuple[str, str]]:
    """(object id, path) of every regular file of the commit that the linter may read."""
    listing = subprocess.run(
        ["git", f"--git-dir={git}", "ls-tree", "-r", "-z", commit],
        capture_output=True,
        check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    blobs = []
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, path = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and _wanted(path):
            blobs.append((oid, path))
    return blobs


def extract(repo: str, commit: str, into: Path, mirrors: Path = DEFAULT_MIRRORS) -> Path:
    """Write the commit's lintable files under `into` (reused when already complete)."""
    if (into / COMPLETE_MARK).is_file():
        return into
    git = git_dir(repo, mirrors)
    if not has_commit(git, commit):
        raise SnapshotMissing(f"{repo}'s snapshot has no commit {commit}")
    blobs = _tree_blobs(git, commit)
    into.mkdir(parents=True, exist_ok=True)
    batch = subprocess.Popen(
        ["git", f"--git-dir={git}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert batch.stdin is not None and batch.stdout is not None
    try:
        for oid, path in blobs:
            batch.stdin.write(oid.encode() + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) < 3 or header[1] != b"blob":
                continue  # absent from the snapshot (large files are not stored)
            data = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)  # the newline after the contents
            target = into / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    finally:
        batch.stdin.close()
        batch.wait()
    (into / COMPLETE_MARK).write_text(f"{repo} {commit}\n", encoding="utf-8")
    return into
