"""What the tests of tbptt-lint and of projects that document rules share: the `# expect:`
comments of fixtures and snippets, the ```python bad / good examples of rule pages, and the
exact output of each rule's fix.

`# expect: TBP001` (or `# expect: TBP006, TBP012`) at the end of a line says that the line is
reported with those codes, and no other line is. A rule page's ```python bad block must trigger
exactly the page's rule among the rules enabled by default (plus the page's own rule, so that an
off-by-default rule can be shown); a ```python good block must trigger nothing at all, with
every rule enabled. The pytest plugin (`tbptt_rule_pages`) and the project's own tests check
them with the functions here.

Imports no torch; the analysis (libcst) only when an example is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tbptt_lint.diagnostics import Finding

EXPECT = re.compile(r"#\s*expect:\s*([A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)")


def expected_lines(source: str) -> list[tuple[str, int]]:
    """(code, 1-based line) of every code of every `# expect:` comment of `source`, in the
    order of the source."""
    found: list[tuple[str, int]] = []
    for number, line in enumerate(source.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            found += [(code.strip(), number) for code in match.group(1).split(",")]
    return found


def expected_codes(source: str) -> set[str]:
    """The codes the `# expect:` comments of `source` name."""
    return {code for code, _ in expected_lines(source)}


def expected_in_files(files: Iterable[Path]) -> set[tuple[Path, str, int]]:
    """(path, code, line) of every `# expect:` comment of the files."""
    return {
        (path, code, line)
        for path in files
        for code, line in expected_lines(path.read_text(encoding="utf-8"))
    }


# ----- rule-page examples -----

EXAMPLE_BLOCK = re.compile(
    r"^```python (bad|good)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)
PAGE_TITLE = re.compile(r"\A# ([A-Z]+[0-9]+)\b")
RULE_CODE = re.compile(r"\A[A-Z]+[0-9]+\Z")

ExampleKind = Literal["bad", "good"]


@dataclass(frozen=True)
class Example:
    """One example of a rule: a page's ```python block or a rule class's INVALID/VALID."""

    code: str  # the rule the example documents
    kind: ExampleKind
    source: str
    origin: str  # where it came from, for messages
    number: int = 1  # its number among the examples of its kind, from 1
    fence_line: int = 0  # 0-based line of its ``` fence in the page (0 for a class's)


def page_examples(text: str, code: str, origin: str = "") -> list[Example]:
    """The ```python bad / good blocks of a rule page, numbered per kind."""
    counts = {"bad": 0, "good": 0}
    found: list[Example] = []
    for match in EXAMPLE_BLOCK.finditer(text):
        kind: ExampleKind = "bad" if match.group(1) == "bad" else "good"
        counts[kind] += 1
        found.append(
            Example(
                code,
                kind,
                match.group(2),
                f"{origin} {kind} #{counts[kind]}".strip(),
                counts[kind],
                text.count("\n", 0, match.start()),
            )
        )
    return found


def page_rule_code(text: str, path: Path) -> str | None:
    """The rule a page documents: its title's code (`# TBP001 name`), else its file name's."""
    title = PAGE_TITLE.match(text)
    if title:
        return title.group(1)
    return path.stem if RULE_CODE.match(path.stem) else None


def example_findings(source: str) -> list[Finding]:
    """Every finding of every rule for `source` (default settings); a syntax error is one
    TBP900 finding."""
    from tbptt_lint.analysis import SourceSyntaxError
    from tbptt_lint.analysis.api import check_source
    from tbptt_lint.catalog import SYNTAX_ERROR_CODE
    from tbptt_lint.diagnostics import Finding
    from tbptt_lint.settings import Settings

    try:
        findings: list[Finding] = check_source(source, "example.py", Settings())
    except SourceSyntaxError as error:
        return [
            Finding(
                SYNTAX_ERROR_CODE, error.message, error.line, error.column, error.line, error.column
            )
        ]
    return findings


@dataclass(frozen=True)
class ExampleProblem:
    """Why an example fails: what it should trigger, and the findings (each with whether it
    counted: off-by-default rules other than the page's own do not)."""

    expected: str
    findings: list[tuple[Finding, bool]]


def example_problem(example: Example, known_codes: Iterable[str] = ()) -> ExampleProblem | None:
    """None when the example does what its kind says, else why not. `known_codes`: the rule
    codes that exist (by default the catalog's)."""
    from tbptt_lint.catalog import BY_CODE, enabled_codes

    found = example_findings(example.source)
    if example.kind == "good":
        if found:
            return ExampleProblem(
                "no finding from any rule (every rule enabled)", [(f, True) for f in found]
            )
        return None
    known = set(known_codes) or set(BY_CODE)
    if example.code not in known:
        return ExampleProblem(
            f"{example.code}, but tbptt-lint has no rule {example.code}",
            [(f, False) for f in found],
        )
    relevant = enabled_codes((), ()) | {example.code}
    counted = {f.code for f in found if f.code in relevant}
    if counted != {example.code}:
        return ExampleProblem(
            f"{example.code} and no other rule that is enabled by default",
            [(f, f.code in relevant) for f in found],
        )
    return None


# ----- fixes -----


def fixed_by(code: str, source: str, unsafe: bool = True) -> str | None:
    """`source` after the fixes of rule `code` (unsafe ones too, unless `unsafe` is False),
    applied in rounds as `tbptt-lint --fix` applies them; None when the rule offers none."""
    from tbptt_lint.diagnostics import Fix, applicable
    from tbptt_lint.edits import apply_fixes
    from tbptt_lint.fixer import MAX_ROUNDS

    text, fixed = source, False
    for _ in range(MAX_ROUNDS):
        fixes: list[Fix] = [
            f.fix for f in example_findings(text) if f.code == code and applicable(f.fix, unsafe)
        ]
        if not fixes:
            break
        text, applied = apply_fixes(text, fixes)
        fixed = fixed or bool(applied)
        if not applied:
            break
    return text if fixed else None


def snippet_findings(source: str, select: tuple[str, ...] = ("TBP",)) -> list[tuple[str, int]]:
    """(code, 1-based line) of every finding on `source` (dedented, linted as `example.py`
    with the rules `select` names), sorted: what a test compares with `expected_sorted`."""
    import textwrap

    from tbptt_lint.analysis.api import check_source
    from tbptt_lint.settings import Settings

    findings = check_source(textwrap.dedent(source), "example.py", Settings(select=select))
    return sorted((f.code, f.line) for f in findings)


def expected_sorted(source: str) -> list[tuple[str, int]]:
    """`expected_lines(source)` sorted, as `snippet_findings` gives the findings."""
    return sorted(expected_lines(source))


def fill(template: str, **parts: str) -> str:
    """`template` with each `{name}` replaced by `parts[name]` (snippet templates hold dict
    and set literals, whose braces `str.format` would take for fields)."""
    for name, text in parts.items():
        template = template.replace("{" + name + "}", text)
    return template
