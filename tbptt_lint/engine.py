"""Run the analysis over files: summarise every file (phase 1), check each file against the
project index (phase 2), then apply rule selection, per-file-ignores and noqa. Reading and
decoding the files is `tbptt_lint.sources`'.

The Python API: `lint_paths` (files and directories, as the command line lints them) and
`lint_source` (one text), both returning `Diagnostic`s.

Nothing here imports torch or imports/executes the linted code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Module-level names so tests can replace the analysis in-process (monkeypatch engine.check_source).
from tbptt_lint.analysis import (
    ModuleSummary,
    ProjectIndex,
    SourceSyntaxError,
    check_source,
    summarize_source,
)
from tbptt_lint.cache import CacheEntry, FileStamp, LintCache, index_fingerprint, run_token
from tbptt_lint.catalog import BY_CODE as CATALOG_BY_CODE
from tbptt_lint.catalog import IO_ERROR_CODE, SYNTAX_ERROR_CODE, enabled_codes, rules_matching
from tbptt_lint.diagnostics import Diagnostic, Finding, Severity, applicable, rule_url
from tbptt_lint.discovery import Discovery, PathPatterns, discover, is_force_excluded
from tbptt_lint.fixer import FixOutcome, fix_document
from tbptt_lint.memory import release_after
from tbptt_lint.noqa import apply_noqa
from tbptt_lint.notebooks import NotebookSource
from tbptt_lint.project_context import project_context
from tbptt_lint.settings import Settings
from tbptt_lint.sources import (
    SourceUnavailable,
    decode_document,
    module_name_for,
    read_bytes,
    read_or_decode,
)
from tbptt_lint.strict import STRICT_ENV, strict

# The text formatter shows the reported lines; longer spans are cut to keep the output short.
MAX_SOURCE_LINES = 6
# Errors about the file itself rather than about its loops; reported whatever `select` says,
# like ruff's syntax errors, unless ignored by name.
ALWAYS_REPORTED_CODES = (SYNTAX_ERROR_CODE, IO_ERROR_CODE)
LINE_REFERENCE = re.compile(r"\bline (\d+)\b")


@dataclass(frozen=True)
class InternalError:
    """A crash inside the analysis for one file: a bug in tbptt-lint, not in the user's code."""

    path: str
    message: str
    traceback: str


@dataclass
class FileResult:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    internal_error: InternalError | None = None
    # Phase 1 output; None when the file could not be read, decoded or parsed.
    summary: ModuleSummary | None = None


@dataclass
class LintResult:
    diagnostics: list[Diagnostic]
    files_checked: int
    internal_errors: list[InternalError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # With fixing on: every file that had applicable fixes, fixed in memory (not yet written).
    fixes: list[FixOutcome] = field(default_factory=list)

    def use_fix_outcomes(self) -> None:
        """Report for each fixed file what its outcome says is left (all of what it had,
        when the fix could not be written)."""
        by_path = {outcome.path: outcome for outcome in self.fixes}
        kept = [d for d in self.diagnostics if d.path not in by_path]
        for outcome in self.fixes:
            kept.extend(outcome.diagnostics)
        self.diagnostics = sorted(kept, key=lambda d: d.sort_key)

    @property
    def files_with_errors(self) -> list[str]:
        """Files with at least one diagnostic or an internal error, sorted."""
        paths = {d.path for d in self.diagnostics} | {e.path for e in self.internal_errors}
        return sorted(paths)


def _expand(selectors: Iterable[str]) -> frozenset[str]:
    return frozenset(rule.code for selector in selectors for rule in rules_matching(selector))


def _diagnostic_at(
    code: str, message: str, path: str, line: int = 1, column: int = 1
) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        path=path,
        line=line,
        column=column,
        end_line=line,
        end_column=column,
        severity=CATALOG_BY_CODE[code].severity,
        url=rule_url(code),
    )


class FileChecker:
    """Everything one process needs to lint files under fixed settings, built once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ignored = _expand(settings.ignore)
        always = frozenset(ALWAYS_REPORTED_CODES) - ignored
        self.enabled = (
            enabled_codes(settings.select, settings.ignore, settings.extend_select) | always
        )
        self.fixable = _expand(settings.fixable) - _expand(settings.unfixable)
        self.per_file_ignores = tuple(
            (PathPatterns((pattern,), settings.project_root), _expand(codes))
            for pattern, codes in settings.per_file_ignores
        )

    def reported_codes(self, path: Path) -> frozenset[str]:
        codes = self.enabled
        for patterns, ignored in self.per_file_ignores:
            if patterns.matches(path):
                codes = codes - ignored
        return codes

    def finalize(
        self,
        findings: Iterable[Finding],
        source: str,
        path: str,
        notebook: NotebookSource | None = None,
    ) -> tuple[list[Diagnostic], list[str]]:
        """Selection, per-file-ignores and noqa, then conversion into diagnostics (placed in
        their notebook cell when the file is a notebook)."""
        kept, warnings = self.select(findings, source, path)
        return self.diagnostics_of(kept, source, path, notebook), warnings

    def select(
        self, findings: Iterable[Finding], source: str, path: str
    ) -> tuple[list[Finding], list[str]]:
        """The findings selection, per-file-ignores and noqa leave, and noqa warnings."""
        reported = self.reported_codes(Path(path))
        selected = [
            finding
            if finding.fix is None or finding.code in self.fixable
            else dataclasses.replace(finding, fix=None)  # unfixable: neither applied nor offered
            for finding in findings
            if finding.code in reported
        ]
        return apply_noqa(selected, source, path)

    def diagnostics_of(
        self,
        kept: Iterable[Finding],
        source: str,
        path: str,
        notebook: NotebookSource | None = None,
    ) -> list[Diagnostic]:
        lines = source.splitlines()
        diagnostics = [_to_diagnostic(finding, path, lines) for finding in kept]
        if notebook is not None:
            diagnostics = [_in_cell(diagnostic, notebook) for diagnostic in diagnostics]
        return diagnostics

    def summarize(self, path: Path, data: bytes | None = None) -> FileResult:
        """Phase 1 for the file at `path`, or for `data` as if it were that file (stdin)."""
        result = FileResult(str(path))
        notebook = None
        try:
            source, notebook = read_or_decode(path, data)
            result.summary = summarize_source(source, module_name_for(path))
        except SourceUnavailable as error:
            self._report_unavailable(result, error, path)
        except SourceSyntaxError as error:
            finding = _syntax_finding(error)
            result.diagnostics, result.warnings = self.finalize([finding], "", str(path), notebook)
        except Exception as error:
            if strict():
                raise
            result.internal_error = _internal_error(str(path), error)
        return result

    def check(self, path: Path, index: ProjectIndex, data: bytes | None = None) -> FileResult:
        result = FileResult(str(path))
        try:
            source, notebook = read_or_decode(path, data)
            try:
                findings = check_source(
                    source, str(path), self.settings, index, module_name_for(path)
                )
            except SourceSyntaxError as error:
                findings = [_syntax_finding(error)]
            result.diagnostics, result.warnings = self.finalize(
                findings, source, str(path), notebook
            )
        except SourceUnavailable as error:
            self._report_unavailable(result, error, path)
        except Exception as error:
            if strict():
                raise
            result.internal_error = _internal_error(str(path), error)
        return result

    def fix(
        self, path: Path, index: ProjectIndex, unsafe: bool, data: bytes | None = None
    ) -> FixOutcome | FileResult:
        """Apply the applicable fixes to one file in memory, re-checking after each round.
        A FileResult when the file cannot be read or the analysis crashed."""
        module_name = module_name_for(path)

        def check_text(
            text: str, notebook: object
        ) -> tuple[list[Finding], list[Diagnostic], list[str]]:
            own = summarize_source(text, module_name)
            updated = ProjectIndex({**index.summaries, module_name: own})
            findings = check_source(text, str(path), self.settings, updated, module_name)
            kept, warnings = self.select(findings, text, str(path))
            diagnostics = self.diagnostics_of(kept, text, str(path), notebook)  # type: ignore[arg-type]
            return kept, diagnostics, warnings

        try:
            original = read_bytes(path) if data is None else data
            text, notebook = decode_document(path, original)
            return fix_document(path, original, text, notebook, check_text, unsafe)
        except (SourceUnavailable, SourceSyntaxError):
            return self.check(path, index, data)  # it reports the unreadable or unparsable file
        except Exception as error:
            if strict():
                raise
            return FileResult(str(path), internal_error=_internal_error(str(path), error))

    def _report_unavailable(self, result: FileResult, error: SourceUnavailable, path: Path) -> None:
        if error.code in self.reported_codes(path):
            result.diagnostics = [
                _diagnostic_at(error.code, error.message, str(path), error.line, error.column)
            ]


def _in_cell(diagnostic: Diagnostic, notebook: NotebookSource) -> Diagnostic:
    cell, line = notebook.locate(diagnostic.line)
    end_cell, end_line = notebook.locate(diagnostic.end_line)
    if end_cell != cell:
        end_line = line

    def in_cell(match: re.Match[str]) -> str:
        # Messages name other lines ("the backward at line 12"): name them by cell too.
        other_cell, other_line = notebook.locate(int(match.group(1)))
        return f"line {other_line} of cell {other_cell}"

    message = LINE_REFERENCE.sub(in_cell, diagnostic.message)
    return dataclasses.replace(diagnostic, cell=cell, line=line, end_line=end_line, message=message)


def _syntax_finding(error: SourceSyntaxError) -> Finding:
    return Finding(
        code=SYNTAX_ERROR_CODE,
        message=f"syntax error: {error.message}",
        line=error.line,
        column=error.column,
        end_line=error.line,
        end_column=error.column,
    )


def _internal_error(path: str, error: BaseException) -> InternalError:
    # Formatting can fail too (a RecursionError whose text holds a deep libcst node).
    try:
        message = f"{type(error).__name__}: {error}"[:500]
        details = traceback.format_exc()
    except RecursionError:
        message, details = type(error).__name__, ""
    return InternalError(path, message, details)


def _to_diagnostic(finding: Finding, path: str, lines: Sequence[str]) -> Diagnostic:
    rule = CATALOG_BY_CODE.get(finding.code)
    last = min(max(finding.end_line, finding.line), finding.line + MAX_SOURCE_LINES - 1)
    return Diagnostic(
        code=finding.code,
        message=finding.message,
        path=path,
        line=finding.line,
        column=finding.column,
        end_line=finding.end_line,
        end_column=finding.end_column,
        severity=rule.severity if rule is not None else Severity.ERROR,
        url=rule_url(finding.code),
        fix=finding.fix,
        cell=finding.cell,
        source_lines=tuple(lines[finding.line - 1 : last]),
    )


def lint_source(
    source: str, path: str | Path, settings: Settings, *, warnings: list[str] | None = None
) -> list[Diagnostic]:
    """Lint one module's text as if it were the file `path` (which need not exist).

    Unknown-code noqa warnings are appended to `warnings` when given. Crashes propagate."""
    checker = FileChecker(settings)
    path = Path(path)
    try:
        module_name = module_name_for(path)
        summary = summarize_source(source, module_name)
        index = ProjectIndex.from_summaries([summary])
        findings = check_source(source, str(path), settings, index, module_name)
    except SourceSyntaxError as error:
        findings = [_syntax_finding(error)]
    diagnostics, found_warnings = checker.finalize(findings, source, str(path))
    if warnings is not None:
        warnings.extend(found_warnings)
    return sorted(diagnostics, key=lambda d: d.sort_key)


# Per-process state for the pool, set once by the initializer instead of pickled per file.
_WORKER_CHECKER: FileChecker | None = None
_WORKER_INDEX: ProjectIndex | None = None


def _init_worker(settings: Settings, index: ProjectIndex | None, strict_mode: bool) -> None:
    global _WORKER_CHECKER, _WORKER_INDEX
    # The fork server keeps the environment it started with: strict mode as this run sees it.
    if strict_mode:
        os.environ[STRICT_ENV] = "1"
    else:
        os.environ.pop(STRICT_ENV, None)
    _WORKER_CHECKER = FileChecker(settings)
    _WORKER_INDEX = index


def _worker_summarize(path: str) -> FileResult:
    assert _WORKER_CHECKER is not None
    result = _WORKER_CHECKER.summarize(Path(path))
    release_after(_size(path))
    return result


def _worker_check(path: str) -> FileResult:
    assert _WORKER_CHECKER is not None and _WORKER_INDEX is not None
    result = _WORKER_CHECKER.check(Path(path), _WORKER_INDEX)
    release_after(_size(path))
    return result


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


WORKER_PRELOAD = ("tbptt_lint.engine", "tbptt_lint.analysis.api", "tbptt_lint.rules")


def _pool_context() -> Any:
    import multiprocessing  # only a run with workers needs it (a warm one: none)

    # fork is unsafe when the parent has threads (torch under pytest, for example); the fork
    # server is spawned once and preloads the engine and the analysis (libcst, the rules), so
    # workers start fast: each of them, in both phases, would import those again.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(WORKER_PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


def _run_pool(
    worker: Any, paths: list[str], settings: Settings, index: ProjectIndex | None, jobs: int
) -> list[FileResult]:
    # Imported here: a warm run starts no workers and should not pay for these imports.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    chunksize = max(1, len(paths) // (jobs * 4))
    try:
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=_pool_context(),
            initializer=_init_worker,
            initargs=(settings, index, strict()),
        ) as pool:
            return list(pool.map(worker, paths, chunksize=chunksize))
    except BrokenProcessPool as error:
        # A worker died (out of memory, a crash in C code); the files it held are unknown.
        return [
            FileResult(
                path, internal_error=InternalError(path, f"worker process died: {error}", "")
            )
            for path in paths
        ]


def lint_paths(
    paths: Sequence[Path | str],
    settings: Settings,
    jobs: int | None = None,
    cache: LintCache | None = None,
    fix: bool = False,
    unsafe_fixes: bool = False,
) -> LintResult:
    """Lint every file found under `paths`. `jobs`: worker processes (None: one per CPU,
    1: in this process). `cache`: reuse and record results of unchanged files. The result does
    not depend on `jobs` or on the cache. `fix`: also fix, in memory, every file with a safe
    fix (or an unsafe one, with `unsafe_fixes`); the diagnostics are then those left after
    fixing, and `fixes` holds the fixed files for the caller to write or diff."""
    discovery = discover(paths, settings)
    checker = FileChecker(settings)
    diagnostics = [
        _diagnostic_at(IO_ERROR_CODE, "No such file or directory", str(path))
        for path in discovery.missing
        if IO_ERROR_CODE in checker.reported_codes(path)
    ]
    warnings = [
        f"tbptt-lint: warning: No Python files found under {path}"
        for path in discovery.empty_directories
    ]
    files = [str(path) for path in discovery.files]
    # Files of the project read only for their helpers (a run that names files: pre-commit).
    context = [str(p) for p in project_context(paths, discovery, settings, module_name_for)]
    read = files + context
    workers = min(jobs or available_cpus(), len(read))
    # Stamps are taken before reading, so a file changed during the run is read again next time.
    stamps = {path: FileStamp.of(path) for path in read} if cache is not None else {}
    # The same files, unchanged, as the last run: its findings, without loading the summaries.
    token = run_token(read, stamps, len(files)) if cache is not None and not fix else None
    if cache is not None and token is not None:
        warm = cache.warm_findings(token)
        if warm is not None:
            return LintResult(
                diagnostics=sorted([*diagnostics, *warm[0]], key=lambda d: d.sort_key),
                files_checked=len(files),
                warnings=[*warnings, *warm[1]],
            )
    looked_up = {path: cache.lookup(path, stamps[path]) for path in read} if cache else {}
    cached = {path: entry for path, entry in looked_up.items() if entry is not None}

    def run(worker: Any, inline: Any, todo: list[str], index: ProjectIndex | None) -> list[Any]:
        if workers > 1 and len(todo) > 1:
            return _run_pool(worker, todo, settings, index, min(workers, len(todo)))
        return [inline(Path(path)) for path in todo]

    fresh_summaries = run(
        _worker_summarize, checker.summarize, [p for p in read if cached.get(p) is None], None
    )
    by_path = {result.path: result for result in fresh_summaries}
    summarized = [by_path.get(path) or _summary_from(cached[path], path) for path in files]
    in_context = [by_path.get(path) or _summary_from(cached[path], path) for path in context]
    index = ProjectIndex.from_summaries(
        [r.summary for r in (*summarized, *in_context) if r.summary is not None]
    )
    fingerprint = index_fingerprint(index) if cache is not None else None
    # Phase 2 reads again only the files phase 1 found could hold a finding.
    to_check = [
        r.path for r in summarized if r.summary is not None and index.needs_check(r.summary)
    ]
    reusable = {
        path
        for path in to_check
        if (entry := cached.get(path)) is not None and entry.index_fingerprint == fingerprint
    }
    fresh_checks = run(
        _worker_check,
        lambda path: checker.check(path, index),
        [path for path in to_check if path not in reusable],
        index,
    )
    checked = fresh_checks + [_check_from(cached[path], path) for path in sorted(reusable)]
    if cache is not None:
        _record(cache, stamps, fresh_summaries, fresh_checks, fingerprint)
        cache.evict()
        cache.save()

    outcomes: list[FixOutcome] = []
    if fix:
        checked, outcomes = _fix_files(checker, index, checked, unsafe_fixes)

    internal_errors: list[InternalError] = []
    found: list[Diagnostic] = []
    said: list[str] = []
    for result in (*summarized, *checked):
        found.extend(result.diagnostics)
        said.extend(result.warnings)
        if result.internal_error is not None:
            internal_errors.append(result.internal_error)
    if cache is not None and token is not None and not internal_errors:
        cache.save_warm(token, found, said)
    diagnostics.extend(found)
    warnings.extend(said)
    return LintResult(
        diagnostics=sorted(diagnostics, key=lambda d: d.sort_key),
        files_checked=len(files),
        internal_errors=sorted(internal_errors, key=lambda e: e.path),
        warnings=warnings,
        fixes=outcomes,
    )


def lint_stdin(
    data: bytes,
    path: Path,
    settings: Settings,
    fix: bool = False,
    unsafe_fixes: bool = False,
) -> LintResult:
    """Lint `data` (read from stdin) as if it were the file `path`, which need not exist: its
    findings, per-file-ignores and noqa are those of that file. With `fix`, `fixes` holds the
    fixed text (also when nothing changed, since the caller prints it in place of the input)."""
    if is_force_excluded(path, settings):  # ruff too lints nothing, and echoes it with --fix
        echoed = [FixOutcome(str(path), data, data)] if fix else []
        return LintResult(diagnostics=[], files_checked=0, fixes=echoed)
    checker = FileChecker(settings)
    own = checker.summarize(path, data)
    # Helpers come from the project modules the file imports, as for a run naming the file.
    named = Discovery(files=[path]) if path.is_file() else Discovery()
    context = project_context([path], named, settings, module_name_for)
    summaries = [own, *(checker.summarize(other) for other in context)]
    index = ProjectIndex.from_summaries([r.summary for r in summaries if r.summary is not None])
    results = [own]
    if own.summary is not None and index.needs_check(own.summary):
        results.append(checker.check(path, index, data))
    diagnostics = [d for r in results for d in r.diagnostics]
    warnings = [w for r in results for w in r.warnings]
    outcomes: list[FixOutcome] = []
    if fix:
        outcome = FixOutcome(str(path), data, data, diagnostics=diagnostics)
        if any(applicable(d.fix, unsafe_fixes) for d in diagnostics):
            fixed = checker.fix(path, index, unsafe_fixes, data)
            if isinstance(fixed, FixOutcome):
                outcome, diagnostics, warnings = fixed, fixed.diagnostics, fixed.warnings
        outcomes.append(outcome)
    return LintResult(
        diagnostics=sorted(diagnostics, key=lambda d: d.sort_key),
        files_checked=1,
        internal_errors=[r.internal_error for r in results if r.internal_error is not None],
        warnings=warnings,
        fixes=outcomes,
    )


def _fix_files(
    checker: FileChecker, index: ProjectIndex, checked: list[FileResult], unsafe: bool
) -> tuple[list[FileResult], list[FixOutcome]]:
    """Fix the files whose findings have an applicable fix; their results become what is left
    after fixing. Few files have fixes, so this runs in this process, after the pool."""
    results: list[FileResult] = []
    outcomes: list[FixOutcome] = []
    for result in checked:
        if not any(applicable(d.fix, unsafe) for d in result.diagnostics):
            results.append(result)
            continue
        fixed = checker.fix(Path(result.path), index, unsafe)
        if isinstance(fixed, FileResult):
            results.append(fixed)
            continue
        outcomes.append(fixed)
        results.append(FileResult(result.path, fixed.diagnostics, fixed.warnings))
    return results, outcomes


def _summary_from(entry: CacheEntry, path: str) -> FileResult:
    return FileResult(
        path,
        diagnostics=list(entry.summary_diagnostics),
        warnings=list(entry.summary_warnings),
        summary=entry.summary,
    )


def _check_from(entry: CacheEntry, path: str) -> FileResult:
    return FileResult(path, diagnostics=list(entry.diagnostics), warnings=list(entry.warnings))


def _record(
    cache: LintCache,
    stamps: dict[str, FileStamp | None],
    summaries: list[FileResult],
    checks: list[FileResult],
    fingerprint: str | None,
) -> None:
    """Store what this run computed; a file that crashed the analysis is not remembered."""
    for result in summaries:
        stamp = stamps.get(result.path)
        if stamp is None or result.internal_error is not None:
            continue
        cache.store(
            result.path,
            CacheEntry(stamp, result.summary, list(result.diagnostics), list(result.warnings)),
        )
    for result in checks:
        entry = cache.entries.get(result.path)
        if entry is None or result.internal_error is not None:
            continue
        entry.index_fingerprint = fingerprint
        entry.diagnostics = list(result.diagnostics)
        entry.warnings = list(result.warnings)
        cache.changed = True
