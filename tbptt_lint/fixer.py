"""`--fix` and `--diff`: apply the fixes of a file's findings, re-check, and repeat.

A fix can reveal or remove other findings, so each round lints the fixed text again, until no
applicable fix is left (or MAX_ROUNDS, as ruff caps its loop). A round whose result does not
parse is thrown away: a fix must never break a file. Nothing is computed for files without
applicable fixes, and diffs only when asked for.
"""

from __future__ import annotations

import ast
import difflib
import tokenize
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from tbptt_lint.atomic import ChangedOnDisk, replace_content
from tbptt_lint.diagnostics import Diagnostic, Finding, Fix, applicable
from tbptt_lint.edits import apply_fixes
from tbptt_lint.notebooks import fix_notebook, read_notebook

MAX_ROUNDS = 10


@dataclass
class FixOutcome:
    path: str
    original: bytes
    fixed: bytes
    # Codes of the findings the fixes removed, counted per finding.
    fixed_codes: Counter[str] = field(default_factory=Counter)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # What the file had before fixing, reported instead when the fix cannot be written.
    unfixed_diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original


# Lints one document's text as it would be reported: the findings that selection and
# suppression comments keep, their diagnostics, and warnings about bad suppressions. The
# engine supplies it: it knows the settings and the project index.
CheckText = Callable[[str, object], tuple[list[Finding], list[Diagnostic], list[str]]]


def fix_document(
    path: Path, data: bytes, text: str, notebook: object, check: CheckText, unsafe: bool
) -> FixOutcome:
    """Fix one file whose bytes are `data` (decoded: `text`; `notebook` maps a notebook's
    program back to its cells, else None)."""
    outcome = FixOutcome(str(path), data, data)
    findings, diagnostics, warnings = check(text, notebook)
    outcome.unfixed_diagnostics = diagnostics
    # Fixes that came back as often as they were applied: they did not remove their
    # findings, and applying them again would only repeat the edit (the same cut, line after
    # line). A round in which no fix removed its finding is thrown away.
    failed: set[FixKey] = set()
    for _ in range(MAX_ROUNDS):
        offered = [
            finding
            for finding in findings
            if applicable(finding.fix, unsafe) and _key(finding) not in failed
        ]
        fixes = [finding.fix for finding in offered if finding.fix is not None]
        if not fixes:
            break
        keys = Counter(_key(finding) for finding in offered)
        attempt = _apply(outcome.fixed, text, notebook, fixes)
        if attempt is None:
            outcome.warnings.append(
                f"tbptt-lint: warning: {path}: fixes were not applied because the fixed code "
                "would not parse; this is a bug in tbptt-lint"
            )
            break
        new_bytes, new_text, new_notebook = attempt
        if new_bytes == outcome.fixed:
            break
        new_findings, new_diagnostics, new_warnings = check(new_text, new_notebook)
        again = Counter(_key(finding) for finding in new_findings if finding.fix is not None)
        failed |= {key for key, count in keys.items() if again[key] >= count}
        if failed >= set(keys):
            break  # every fix of the round came back with its finding: it changed nothing
        before = Counter(finding.code for finding in findings)
        after = Counter(finding.code for finding in new_findings)
        outcome.fixed_codes.update(before - after)
        outcome.fixed = new_bytes
        text, notebook = new_text, new_notebook
        findings, diagnostics, warnings = new_findings, new_diagnostics, new_warnings
    outcome.diagnostics = diagnostics
    outcome.warnings.extend(warnings)
    return outcome


FixKey = tuple[str, str, tuple[str, ...]]


def _key(finding: Finding) -> FixKey:
    """A fix as it reads, wherever it lands: its finding's code, its title and its texts."""
    fix = finding.fix
    if fix is None:
        return (finding.code, "", ())
    return (finding.code, fix.message, tuple(edit.content for edit in fix.edits))


def _apply(
    data: bytes, text: str, notebook: object, fixes: list[Fix]
) -> tuple[bytes, str, object] | None:
    if notebook is not None:
        new_bytes, _ = fix_notebook(data, notebook, fixes)  # type: ignore[arg-type]
        new_notebook = read_notebook(new_bytes)
        new_text = new_notebook.text
    else:
        new_text, _ = apply_fixes(text, fixes)
        new_bytes = new_text.encode(_encoding(data))
        new_notebook = None
    if not _parses(new_text):
        return None
    return new_bytes, new_text, new_notebook


def _encoding(data: bytes) -> str:
    lines = iter(BytesIO(data).readlines())
    try:
        encoding, _ = tokenize.detect_encoding(lambda: next(lines, b""))
    except SyntaxError:
        return "utf-8"
    return encoding


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def unified_diff(outcome: FixOutcome, display_path: str) -> str:
    """The change as a unified diff, `a/` and `b/` less, as `ruff --diff` prints it."""
    old = _lines(outcome.original)
    new = _lines(outcome.fixed)
    diff = difflib.unified_diff(old, new, fromfile=display_path, tofile=display_path)
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff
    )


def _lines(data: bytes) -> list[str]:
    return data.decode(_encoding(data), errors="replace").splitlines(keepends=True)


def fixed_total(outcomes: Iterable[FixOutcome]) -> int:
    return sum(sum(outcome.fixed_codes.values()) for outcome in outcomes)


def write_fixes(outcomes: Iterable[FixOutcome]) -> list[str]:
    """Write every changed file atomically; one warning per file that could not be written."""
    warnings = []
    for outcome in outcomes:
        if not outcome.changed:
            continue
        try:
            replace_content(Path(outcome.path), outcome.original, outcome.fixed)
        except ChangedOnDisk:
            warnings.append(
                f"tbptt-lint: warning: {outcome.path}: not fixed, the file changed while it "
                "was being fixed"
            )
            _unfixed(outcome)
        except OSError as error:
            warnings.append(
                f"tbptt-lint: warning: {outcome.path}: cannot write the fix: "
                f"{error.strerror or error}"
            )
            _unfixed(outcome)
    return warnings


def _unfixed(outcome: FixOutcome) -> None:
    outcome.fixed = outcome.original
    outcome.fixed_codes.clear()
    outcome.diagnostics = outcome.unfixed_diagnostics
