"""Turn the paths given on the command line into the sorted list of files to lint.

Directories are walked recursively, skipping excluded names and patterns and whatever the
`.gitignore` files (the enclosing repository's and nested ones) ignore. Files named explicitly
are always linted. Paths that do not exist are returned separately so the engine can report them.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pathspec
from pathspec.util import normalize_file

from tbptt_lint.settings import Settings

# The suffixes linted when found in a directory walk. Notebooks (".ipynb") join this tuple once
# the engine can read them (see sources.read_source), without other changes here.
SOURCE_SUFFIXES: tuple[str, ...] = (".py", ".ipynb")
GITIGNORE_NAME = ".gitignore"


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob like ruff's: `*` and `?` stay within one path segment, `**` spans
    segments, `[...]` is a class and `{a,b}` an alternation. Matches the whole string."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
        elif char == "{":
            end = pattern.find("}", i)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                options = pattern[i + 1 : end].split(",")
                out.append("(?:" + "|".join(glob_to_regex(o).pattern[:-2] for o in options) + ")")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _posix(path: Path | str) -> str:
    return str(path).replace(os.sep, "/")


@dataclass(frozen=True)
class PathPatterns:
    """Glob patterns matched like ruff's exclude and per-file-ignores: against the file's base
    name, and against its absolute path with the pattern taken relative to `root`."""

    patterns: tuple[str, ...]
    root: Path
    _compiled: tuple[re.Pattern[str], re.Pattern[str]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        root = _posix(self.root.absolute()).rstrip("/")
        by_name, by_path = [], []
        for pattern in self.patterns:
            posix = pattern.replace(os.sep, "/").rstrip("/")
            absolute = posix if posix.startswith("/") else f"{root}/{posix.removeprefix('./')}"
            by_name.append(glob_to_regex(posix).pattern)
            by_path.append(glob_to_regex(absolute).pattern)
        # One alternation per kind: a directory walk asks this of every entry.
        never = re.compile(r"(?!)")
        object.__setattr__(
            self,
            "_compiled",
            tuple(
                re.compile("|".join(f"(?:{p})" for p in parts)) if parts else never
                for parts in (by_name, by_path)
            ),
        )

    def matches(self, path: Path) -> bool:
        return self.matches_text(path.name, _posix(path.absolute()))

    def matches_text(self, name: str, absolute: str) -> bool:
        """`matches` for a base name and an absolute POSIX path already at hand."""
        by_name, by_path = self._compiled
        return bool(by_name.match(name) or by_path.match(absolute))


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


def _any_pattern(spec: pathspec.PathSpec[Any]) -> re.Pattern[str] | None:
    """One regex that matches a path exactly when some pattern of `spec` does (each pattern's
    regex, as pathspec searches it, in one alternation), so most paths, which no pattern
    matches, take one search instead of one per pattern. None where that cannot be built."""
    sources: list[str] = []
    flags: set[int] = set()
    for pattern in spec.patterns:
        if getattr(pattern, "include", None) is None:
            continue  # a no-op line (a comment): never matches
        regex = getattr(pattern, "regex", None)
        if not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
            return None
        if "(?P=" in regex.pattern:
            return None  # a back-reference to a group renamed below
        sources.append(_NAMED_GROUP.sub("(?:", regex.pattern))
        flags.add(regex.flags)
    if len(flags) > 1:
        return None
    if not sources:
        return re.compile(r"(?!)")
    try:
        return re.compile("|".join(f"(?:{source})" for source in sources), flags.pop())
    except re.error:
        return None


@dataclass(frozen=True)
class GitIgnore:
    """One .gitignore file's patterns, relative to the directory holding it."""

    base: Path
    spec: pathspec.PathSpec[Any]
    base_text: str = ""  # the base as an absolute POSIX string, ending in "/"
    # Whether any pattern could match, asked first (see `_any_pattern`); None: ask the spec.
    any_pattern: re.Pattern[str] | None = None

    @classmethod
    def load(cls, directory: Path) -> GitIgnore | None:
        path = directory / GITIGNORE_NAME
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None
        base = directory.absolute()
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        return cls(base, spec, _posix(base).rstrip("/") + "/", _any_pattern(spec))

    def decision(self, path: Path, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a `!` pattern, None: no pattern matched."""
        return self.decision_text(_posix(path.absolute()), is_dir)

    def decision_text(self, absolute: str, is_dir: bool) -> bool | None:
        """`decision` for an absolute POSIX path string."""
        if not absolute.startswith(self.base_text):
            return None
        relative = absolute[len(self.base_text) :]
        if not relative:
            return None
        if is_dir:
            relative += "/"
        if self.any_pattern is not None and not self.any_pattern.search(normalize_file(relative)):
            return None  # no pattern matches: no decision, as the spec would say
        check = getattr(self.spec, "check_file", None)
        if check is not None:
            include: bool | None = check(relative).include
            return include
        # pathspec < 0.12 has no check_file: the last matching pattern decides, as in git.
        result = None
        for pattern in self.spec.patterns:
            if pattern.include is not None and pattern.match_file(relative) is not None:
                result = pattern.include
        return result


def is_gitignored(path: Path, is_dir: bool, stack: Sequence[GitIgnore]) -> bool:
    return is_gitignored_text(_posix(path.absolute()), is_dir, stack)


def is_gitignored_text(absolute: str, is_dir: bool, stack: Sequence[GitIgnore]) -> bool:
    # Deeper .gitignore files override shallower ones, so the innermost decision wins.
    for ignore in reversed(stack):
        decision = ignore.decision_text(absolute, is_dir)
        if decision is not None:
            return decision
    return False


def _ancestor_gitignores(directory: Path, project_root: Path) -> list[GitIgnore]:
    """The .gitignore files above `directory` that git would apply: up to the repository root,
    or, outside a repository, up to the project root."""
    directory = directory.absolute()
    if (directory / ".git").exists():
        return []
    ancestors = list(directory.parents)
    repository = next((i for i, a in enumerate(ancestors) if (a / ".git").exists()), None)
    if repository is not None:
        chain = ancestors[: repository + 1]
    else:
        root = project_root.absolute()
        chain = [a for a in ancestors if a == root or root in a.parents]
    loaded = [GitIgnore.load(a) for a in reversed(chain)]
    return [ignore for ignore in loaded if ignore is not None]


def _inside_ignored_directory(directory: Path, stack: Sequence[GitIgnore]) -> bool:
    if not stack:
        return False
    outermost = stack[0].base
    directory = directory.absolute()
    for candidate in (directory, *directory.parents):
        if candidate == outermost or outermost not in candidate.parents:
            return False
        if is_gitignored(candidate, True, stack):
            return True
    return False


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    # Paths given on the command line that do not exist.
    missing: list[Path] = field(default_factory=list)
    # Directories given on the command line that hold no file to lint.
    empty_directories: list[Path] = field(default_factory=list)


class _Walker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.excluded = PathPatterns(
            (*settings.exclude, *settings.extend_exclude), settings.project_root
        )
        self.visited_directories: set[str] = set()

    def walk(self, root: Path) -> list[tuple[str, Path]]:
        """(identity, path) of every file to lint under `root`; see `_identity`."""
        stack = _ancestor_gitignores(root, self.settings.project_root)
        if _inside_ignored_directory(root, stack):
            # The user named a directory that git ignores (say, .venv/.../torch): lint it, with
            # only the .gitignore files inside it applying.
            stack = []
        found: list[tuple[str, Path]] = []
        self._walk_directory(root, stack, found)
        return found

    def _walk_directory(
        self, directory: Path, stack: list[GitIgnore], found: list[tuple[str, Path]]
    ) -> None:
        try:
            resolved = os.path.realpath(directory, strict=True)
        except (OSError, RuntimeError):
            return
        # Symlinked directories are followed once; a link back up the tree would loop forever.
        if resolved in self.visited_directories:
            return
        self.visited_directories.add(resolved)
        own = GitIgnore.load(directory)
        if own is not None:
            stack = [*stack, own]
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        # Entry paths as strings: Path objects for every entry were most of a warm run's time.
        absolute_directory = _posix(directory.absolute()).rstrip("/")
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                is_dir = is_file = False
            absolute = f"{absolute_directory}/{name}"
            if self.excluded.matches_text(name, absolute):
                continue
            if stack and is_gitignored_text(absolute, is_dir, stack):
                continue
            if not is_dir and not is_file:
                if _is_broken_link(entry):
                    # Returned like a file, so reading it reports the error (TBP901), as for
                    # a broken link named on the command line.
                    path = directory / name
                    found.append((_identity(path), path))
                continue
            if is_dir:
                self._walk_directory(directory / name, stack, found)
            elif is_file and os.path.splitext(name)[1] in SOURCE_SUFFIXES:
                path = directory / name
                # Inside a resolved directory, only a symlinked file needs resolving again.
                identity = _identity(path) if entry.is_symlink() else f"{resolved}{os.sep}{name}"
                found.append((identity, path))


def _is_broken_link(entry: os.DirEntry[str]) -> bool:
    """A symlink that loops (whatever its name), or a dangling one named like a source file. A
    dangling link without a source suffix (a dataset mount that is not there) is not ours."""
    try:
        if not entry.is_symlink():
            return False
        os.stat(entry.path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return True
        return os.path.splitext(entry.name)[1] in SOURCE_SUFFIXES
    return False


def _identity(path: Path) -> str:
    """One key for every spelling of a file (`a.py`, `./a.py`, `/abs/a.py`)."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: keep the spelling
        return str(path)


def is_force_excluded(path: Path, settings: Settings) -> bool:
    """Whether `force-exclude` skips `path` although it was named: it, or a directory above it
    up to the project root, matches an exclude pattern (as ruff checks named paths)."""
    if not settings.force_exclude:
        return False
    excluded = PathPatterns((*settings.exclude, *settings.extend_exclude), settings.project_root)
    absolute = Path(os.path.abspath(path))
    root = settings.project_root.absolute()
    for candidate in (absolute, *absolute.parents):
        if candidate == root:
            return False
        if excluded.matches(candidate):
            return True
        if root not in candidate.parents:  # outside the project: the path itself only
            return False
    return False


def discover(paths: Iterable[Path | str], settings: Settings) -> Discovery:
    """Files to lint for `paths`, sorted and without duplicates."""
    result = Discovery()
    walker = _Walker(settings)
    files: dict[str, Path] = {}
    for given in paths:
        path = Path(os.path.normpath(given))
        if is_force_excluded(path, settings):
            continue
        if path.is_dir():
            found = walker.walk(path)
            if not found:
                result.empty_directories.append(path)
            for identity, file in found:
                files.setdefault(identity, file)
        elif path.exists() or path.is_symlink():
            # Named explicitly: linted whatever its suffix or the exclude patterns say.
            # A dangling symlink lands here too; reading it reports the error.
            files.setdefault(_identity(path), path)
        else:
            result.missing.append(path)
    result.files = sorted(files.values(), key=lambda p: _posix(p))
    return result


def walk_project(root: Path, settings: Settings, limit: int) -> list[Path] | None:
    """The files a directory run on `root` would lint; None when there are more than `limit`."""
    found = _Walker(settings).walk(root)
    if len(found) > limit:
        return None
    return [path for _, path in found]
