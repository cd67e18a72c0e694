"""Lint an editor's buffer as the command line would lint the saved file, with no LSP in sight.

The buffer's text stands for the file; its settings come from the nearest configuration file
above it; the project modules it imports are read from disk for their helpers, as a run that
names the file reads them (`project_context`). Settings, the project's module map and the
imported modules' summaries are cached, and dropped when a file changes on disk.

Not thread-safe: the server calls it from one worker thread only.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbptt_lint.analysis import (
    ModuleSummary,
    ProjectIndex,
    SourceSyntaxError,
    check_source,
    summarize_source,
)
from tbptt_lint.cache import FileStamp
from tbptt_lint.catalog import IO_ERROR_CODE, SYNTAX_ERROR_CODE
from tbptt_lint.config import ConfigError, load_settings
from tbptt_lint.diagnostics import Diagnostic, Finding
from tbptt_lint.discovery import walk_project
from tbptt_lint.engine import FileChecker, _syntax_finding
from tbptt_lint.fixer import fix_document
from tbptt_lint.integrations.server.incremental import IncrementalChecker
from tbptt_lint.noqa import LINE_NOQA
from tbptt_lint.notebooks import NotebookSource
from tbptt_lint.project_context import MAX_PROJECT_FILES, imported_files, modules_by_name
from tbptt_lint.settings import Settings
from tbptt_lint.sources import decode_source, module_name_for

CONFIG_FILE_NAMES = ("pyproject.toml", "tbptt-lint.toml")


@dataclass
class Analysis:
    """What the buffer holds: its diagnostics (fixes attached), the text they were computed
    for, and configuration problems to show the user."""

    text: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notebook: NotebookSource | None = None
    # The configuration file could not be used (the defaults were): the one-line reason.
    config_error: str | None = None

    @property
    def has_syntax_error(self) -> bool:
        return any(d.code == SYNTAX_ERROR_CODE for d in self.diagnostics)


class WorkspaceLinter:
    """Settings, project files and summaries, kept between analyses."""

    def __init__(self, roots: Sequence[Path] = (), incremental: bool = True) -> None:
        # Workspace folders: the project of a file with no config file and no git repository.
        self.roots = [root.resolve() for root in roots]
        self._settings: dict[Path, Settings | ConfigError] = {}
        self._projects: dict[Path, dict[str, list[Path]] | None] = {}
        self._summaries: dict[Path, tuple[FileStamp | None, ModuleSummary | None]] = {}
        # Every file the walks of `_projects` found, resolved.
        self._project_files: set[Path] = set()
        # Each open buffer's block caches (`incremental`), by path; None: check files whole.
        self._buffers: dict[Path, IncrementalChecker] | None = {} if incremental else None

    # --- cache invalidation -------------------------------------------------------------

    def file_changed(self, path: Path, created_or_deleted: bool = False) -> None:
        """A file changed on disk (saved, created, deleted): forget what depends on it."""
        if path.name in CONFIG_FILE_NAMES:
            self._settings.clear()
            self._forget_projects()
        resolved = path.resolve()
        if created_or_deleted or (path.suffix == ".py" and not self._known(resolved)):
            # A module came or went (a file saved under a new name): walk the projects again.
            self._forget_projects()
        self._summaries.pop(resolved, None)
        if self._buffers is not None:
            # Kept results name settings and summaries by identity: start afresh.
            self._buffers.clear()

    def forget(self, path: Path) -> None:
        """A buffer was closed: drop its block caches."""
        if self._buffers is not None:
            self._buffers.pop(path, None)

    def buffer(self, path: Path) -> IncrementalChecker | None:
        """The block caches of the buffer `path` (None when the server checks files whole)."""
        if self._buffers is None:
            return None
        return self._buffers.setdefault(path, IncrementalChecker())

    def _forget_projects(self) -> None:
        self._projects.clear()
        self._project_files.clear()

    def _known(self, path: Path) -> bool:
        return path in self._project_files

    # --- analysis -----------------------------------------------------------------------

    def settings_for(self, path: Path) -> Settings:
        """The settings the command line would use for `path`. Raises ConfigError."""
        directory = path.parent.resolve()
        found = self._settings.get(directory)
        if found is None:
            try:
                found = load_settings(cwd=directory)
            except ConfigError as error:
                found = error
            self._settings[directory] = found
        if isinstance(found, ConfigError):
            raise found
        return found

    def analyse(self, path: Path, text: str, notebook: NotebookSource | None = None) -> Analysis:
        """Lint `text` as the file `path`. Crashes propagate (the caller logs them)."""
        analysis = Analysis(text, notebook=notebook)
        try:
            settings = self.settings_for(path)
        except ConfigError as error:
            analysis.config_error = f"tbptt-lint: {error}"
            analysis.warnings.append(analysis.config_error)
            settings = Settings(project_root=path.parent)
        checker = FileChecker(settings)
        try:
            findings = self._findings(path, text, settings)
        except SourceSyntaxError as error:
            findings = [_syntax_finding(error)]
        diagnostics, warnings = checker.finalize(findings, text, str(path), notebook)
        analysis.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        analysis.warnings.extend(warnings)
        return analysis

    def _index(
        self,
        path: Path,
        text: str,
        settings: Settings,
        buffer: IncrementalChecker | None = None,
    ) -> tuple[ProjectIndex, str]:
        module_name = module_name_for(path)
        if buffer is None:
            own = summarize_source(text, module_name)
        else:
            used = buffer.summary_cache()
            own = summarize_source(text, module_name, block_cache=used)
            buffer.keep_summaries(used)
        context = [s for s in self._context_summaries(path, text, settings) if s is not None]
        # The buffer's own summary wins over a module of the same name found on disk.
        summaries = {summary.module_name: summary for summary in context}
        summaries[module_name] = own
        return ProjectIndex(summaries), module_name

    def _findings(self, path: Path, text: str, settings: Settings) -> list[Finding]:
        buffer = self.buffer(path)
        index, module_name = self._index(path, text, settings, buffer)
        if buffer is None:
            findings: list[Finding] = check_source(text, str(path), settings, index, module_name)
            return findings
        # `check_source` looked up at each call: the tests replace it.
        return buffer.findings(
            lambda *args: check_source(*args), text, str(path), settings, index, module_name
        )

    def fix_all(self, path: Path, text: str, unsafe: bool = False) -> str | None:
        """The buffer with its applicable fixes applied, re-checked round after round as
        `--fix` does; None when nothing changes or the text does not parse."""
        settings = self.settings_for(path)
        checker = FileChecker(settings)
        try:
            index, module_name = self._index(path, text, settings)
        except SourceSyntaxError:
            return None
        context = {name: s for name, s in index.summaries.items() if name != module_name}

        def check_text(
            new_text: str, notebook: object
        ) -> tuple[list[Finding], list[Diagnostic], list[str]]:
            own = summarize_source(new_text, module_name)
            updated = ProjectIndex({**context, module_name: own})
            findings = check_source(new_text, str(path), settings, updated, module_name)
            kept, warnings = checker.select(findings, new_text, str(path))
            return kept, checker.diagnostics_of(kept, new_text, str(path)), warnings

        # `fix_document` works on the file's bytes; UTF-8 keeps the text as it is.
        data = text.encode("utf-8")
        outcome = fix_document(path, data, text, None, check_text, unsafe)
        if not outcome.changed:
            return None
        return decode_source(outcome.fixed)

    def _context_summaries(
        self, path: Path, text: str, settings: Settings
    ) -> list[ModuleSummary | None]:
        root = self._project_root(path, settings)
        if root is None:
            return []
        by_module = self._project_modules(root, settings)
        if not by_module:
            return []
        named = path.resolve()

        def read(file: Path) -> str | None:
            return text if file == named else _read_text(file)

        return [
            self._summary(file)
            for file in imported_files([named], by_module, module_name_for, read)
        ]

    def _project_root(self, path: Path, settings: Settings) -> Path | None:
        """As `context_root`, from the document rather than the server's directory: the
        configuration file's directory, the git repository, or the workspace folder."""
        if settings.config_path is not None:
            return settings.config_path.parent.resolve()
        directory = path.parent.resolve()
        for candidate in (directory, *directory.parents):
            if (candidate / ".git").exists():
                return candidate
        return next((root for root in self.roots if directory.is_relative_to(root)), None)

    def _project_modules(self, root: Path, settings: Settings) -> dict[str, list[Path]] | None:
        if root not in self._projects:
            files = walk_project(root, settings, MAX_PROJECT_FILES)
            self._projects[root] = (
                None if files is None else modules_by_name(files, module_name_for)
            )
            self._project_files.update(file.resolve() for file in files or ())
        return self._projects[root]

    def _summary(self, file: Path) -> ModuleSummary | None:
        stamp = FileStamp.of(file)
        cached = self._summaries.get(file)
        if cached is not None and cached[0] == stamp and stamp is not None:
            return cached[1]
        text = _read_text(file)
        summary = None
        if text is not None:
            try:
                summary = summarize_source(text, module_name_for(file))
            except SourceSyntaxError:
                summary = None
        self._summaries[file] = (stamp, summary)
        return summary


def _read_text(path: Path) -> str | None:
    try:
        return decode_source(path.read_bytes())
    except Exception:  # noqa: BLE001 - an unreadable helper module lends no helpers
        return None


def add_noqa(text: str, line: int, code: str) -> str | None:
    """`text` with `code` added to the noqa comment of 1-based `line` (a new `# noqa: CODE`
    at its end when it has none). None when the line cannot take a comment (it ends inside a
    string) or already suppresses everything."""
    if code in (SYNTAX_ERROR_CODE, IO_ERROR_CODE):
        return None
    lines = text.splitlines(keepends=True)
    if not 1 <= line <= len(lines):
        return None
    original = lines[line - 1]
    body = original.rstrip("\r\n")
    ending = original[len(body) :]
    comment = _comment_on(text, line)
    if comment is None:
        new_body = f"{body.rstrip()}  # noqa: {code}"
    else:
        column, comment_text = comment
        match = LINE_NOQA.search(comment_text)
        if match is None:
            new_body = f"{body[:column].rstrip()}  # noqa: {code}  {comment_text}"
        elif match.group("codes") is None:
            if ":" in match.group(0):
                end = column + match.end()
                new_body = f"{body[:end].rstrip()} {code}{body[end:]}"
            else:
                return None  # a blanket suppression already covers every code
        else:
            end = column + match.end("codes")
            new_body = f"{body[:end]}, {code}{body[end:]}"
    lines[line - 1] = new_body + ending
    new_text = "".join(lines)
    try:
        ast.parse(new_text)
    except (SyntaxError, ValueError):
        return None
    # A line that ends inside a string took the text into the string, not a comment.
    added = _comment_on(new_text, line)
    if added is None or code not in added[1]:
        return None
    return new_text


def _comment_on(text: str, line: int) -> tuple[int, str] | None:
    """The (column, text) of the comment ending `line`, or None."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and token.start[0] == line:
                return token.start[1], token.string
            if token.start[0] > line:
                break
    except (tokenize.TokenError, SyntaxError):
        return None
    return None
