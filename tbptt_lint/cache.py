"""The results cache: unchanged files are neither read nor analysed again.

One file per tool version and configuration, under `.tbptt_lint_cache/` in the project root
(or `--cache-dir`). An entry is reused while the file's size, modification time and inode are
unchanged; phase 2 results are reused only while the summaries of every helper in the run are
the same as when they were computed, since a helper's change can change another file's findings.
Entries of files that a run did not see are kept, so that pre-commit and editors, which lint a
few files at a time, do not evict what the previous run learned: the cache holds the files of the
last `MAX_ENTRIES` uses, the least recently used dropped first. The cache file is replaced
atomically, so a killed run leaves the previous cache, never a partial one, and an unreadable
cache is treated as empty.

Beside it, a small record of the last run's findings (`.warm`): a run that reads the very same
files, every one with the stamp it had then, under the same configuration, has the same findings
(a run's findings depend on nothing else), so it takes them from there without loading the
summaries at all. Any change of a file the run reads, or of the set of files, misses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tbptt_lint import __version__
from tbptt_lint.analysis import ModuleSummary, ProjectIndex
from tbptt_lint.diagnostics import Diagnostic
from tbptt_lint.settings import Settings

CACHE_DIRECTORY = ".tbptt_lint_cache"
FORMAT = 12  # bump when the pickled layout changes (or what summaries hold)
# Enough for the largest trees measured (the torch package: 2,285 files) several times over,
# while a cache of this size still loads in a fraction of a second.
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path | str) -> FileStamp | None:
        try:
            status = os.stat(path)
        except OSError:
            return None
        return cls(status.st_size, status.st_mtime_ns, status.st_ino)


@dataclass
class CacheEntry:
    stamp: FileStamp
    # Phase 1: the summary, or the diagnostics that replaced it (unreadable, broken file).
    summary: ModuleSummary | None = None
    summary_diagnostics: list[Diagnostic] = field(default_factory=list)
    summary_warnings: list[str] = field(default_factory=list)
    # Phase 2, valid for `index_fingerprint` only.
    index_fingerprint: str | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The number of the last run that used this entry: the oldest go first when the cache is full.
    last_run: int = 0


def settings_fingerprint(settings: Settings) -> str:
    """What the results depend on besides the files: the tool and the configuration."""
    relevant = (
        FORMAT,
        __version__,
        settings.select,
        settings.ignore,
        settings.extend_select,
        settings.per_file_ignores,
        settings.fixable,
        settings.unfixable,
        settings.detach_functions,
        settings.recurrent_modules,
        str(settings.project_root),
    )
    return hashlib.sha256(repr(relevant).encode()).hexdigest()[:16]


def index_fingerprint(index: ProjectIndex) -> str:
    """The helper facts of a whole run, ignoring what only decides which files to read."""
    digest = hashlib.sha256()
    for name in sorted(index.summaries):
        summary = index.summaries[name]
        facts = (
            sorted(summary.functions.items()),
            sorted(summary.inplace_detach_classes),
            sorted(summary.forward_cuts.items()),
            sorted((k, sorted(v.items())) for k, v in summary.stateful_classes.items()),
            sorted(
                (k, sorted((m, sorted(a.items())) for m, a in v.items()))
                for k, v in summary.state_methods.items()
            ),
            sorted(summary.forward_resets.items()),
            sorted(summary.factories.items()),
            summary.loader_calls or (),
            summary.optimizer_calls or (),
            sorted(summary.optional_state_cells.items()),
        )
        if any(facts):
            digest.update(repr((name, facts)).encode())
    return digest.hexdigest()[:16]


def run_token(
    read: Sequence[str], stamps: Mapping[str, FileStamp | None], reported: int
) -> str | None:
    """What a run's findings depend on besides the configuration: the files it reads, in order,
    with their stamps, and how many of them (the first) it reports on. None when a file has no
    stamp (it cannot be read): such a run is not recorded."""
    digest = hashlib.sha256(repr((FORMAT, reported)).encode())
    for path in read:
        stamp = stamps.get(path)
        if stamp is None:
            return None
        digest.update(f"\0{path}\0{stamp.size},{stamp.mtime_ns},{stamp.inode}".encode())
    return digest.hexdigest()


class LintCache:
    def __init__(self, directory: Path, settings: Settings, max_entries: int | None = None) -> None:
        self.directory = directory
        self.path = directory / f"{__version__}-{settings_fingerprint(settings)}.pickle"
        self.warm_path = self.path.with_suffix(".warm")
        self.max_entries = MAX_ENTRIES if max_entries is None else max_entries
        # Loaded on first use: a run whose findings come from the warm record never loads it.
        self._entries: dict[str, CacheEntry] | None = None
        self._run: int | None = None
        self.changed = False

    @property
    def entries(self) -> dict[str, CacheEntry]:
        if self._entries is None:
            self._entries = self._load()
        return self._entries

    @property
    def run(self) -> int:
        if self._run is None:
            self._run = 1 + max((entry.last_run for entry in self.entries.values()), default=0)
        return self._run

    def _load(self) -> dict[str, CacheEntry]:
        try:
            with self.path.open("rb") as handle:
                loaded = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            return {}
        except Exception:  # noqa: BLE001 - a damaged cache must never break a run
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def lookup(self, path: str, stamp: FileStamp | None) -> CacheEntry | None:
        entry = self.entries.get(path)
        if entry is None or stamp is None or entry.stamp != stamp:
            return None
        # Recorded, but not a reason to rewrite the cache: a warm run that changed nothing
        # writes nothing. The use is saved with the next run that does write.
        entry.last_run = self.run
        return entry

    def store(self, path: str, entry: CacheEntry) -> None:
        entry.last_run = self.run
        self.entries[path] = entry
        self.changed = True

    def evict(self) -> None:
        """Keep at most `max_entries` entries, dropping the least recently used, so the cache
        does not grow forever. Entries of files this run did not see stay while there is room."""
        excess = len(self.entries) - self.max_entries
        if excess <= 0:
            return
        oldest = sorted(self.entries, key=lambda path: self.entries[path].last_run)[:excess]
        for path in oldest:
            del self.entries[path]
        self.changed = True

    def warm_findings(self, token: str) -> tuple[list[Diagnostic], list[str]] | None:
        """The diagnostics and warnings of the last recorded run, if it had this `run_token`."""
        try:
            with self.warm_path.open("rb") as handle:
                recorded = pickle.load(handle)
        except Exception:  # noqa: BLE001 - missing or damaged: an ordinary run
            return None
        if not (isinstance(recorded, tuple) and len(recorded) == 3 and recorded[0] == token):
            return None
        _, diagnostics, warnings = recorded
        if not (isinstance(diagnostics, list) and isinstance(warnings, list)):
            return None
        return list(diagnostics), list(warnings)

    def save_warm(self, token: str, diagnostics: list[Diagnostic], warnings: list[str]) -> None:
        """Record a run's findings for the next run that reads the same files unchanged."""
        self._write(self.warm_path, (token, diagnostics, warnings))

    def save(self) -> None:
        if not self.changed:
            return
        self._write(self.path, self.entries)

    def _write(self, path: Path, value: Any) -> None:
        import tempfile  # a warm run writes nothing and does not import it

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            gitignore = self.directory / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("*\n", encoding="utf-8")
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        except OSError:
            return  # a read-only tree: run without a cache
        try:
            with os.fdopen(descriptor, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is not secret
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # a full disk: keep the previous cache
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
