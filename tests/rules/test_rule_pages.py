"""The rule pages under `rules/` and the rules' own examples, checked against the analysis.

Every ```python bad block on a page must trigger exactly the page's rule (among the rules
enabled by default, plus the page's own rule, so that off-by-default rules can be shown);
every ```python good block must trigger nothing at all, with every rule enabled. The pages'
blocks are checked by the pytest plugin, one item each (`rules/TBP001.md::bad[1]`, enabled by
`tbptt_rule_pages` in pyproject.toml); this module checks that the plugin covers every page,
and checks each rule class's INVALID and VALID snippets the same way. Each page's header must
agree with the class attributes, and `rules/README.md` must index every page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tbptt_lint.analysis import SourceSyntaxError
from tbptt_lint.analysis.api import check_source
from tbptt_lint.rules import (
    ALL_RULES,
    IO_ERROR_CODE,
    RULES_BY_CODE,
    SYNTAX_ERROR_CODE,
    enabled_codes,
)
from tbptt_lint.rules.base import Rule
from tbptt_lint.settings import Settings

PAGES = Path(__file__).resolve().parents[2] / "rules"
BLOCK = re.compile(r"^```python (bad|good)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^```(\S*)(?:[ \t]+(\S+))?", re.MULTILINE)
HEADER = re.compile(
    r"^Severity: (?P<severity>\w+) · Default: (?P<default>on|off) · Fix: (?P<fix>\w+)(?P<rest>.*)$",
    re.MULTILINE,
)
# Pages that document a condition of the path rather than of source text have no code.
NO_CODE_EXAMPLES = {IO_ERROR_CODE}


@dataclass(frozen=True)
class Example:
    code: str  # the rule the example documents
    kind: str  # "bad" or "good"
    source: str
    origin: str  # where it came from, for messages


def page_path(code: str) -> Path:
    return PAGES / f"{code}.md"


def page_text(code: str) -> str:
    return page_path(code).read_text(encoding="utf-8")


def page_examples() -> list[tuple[str, Example]]:
    """(test id, example) for every fenced bad/good block of every page."""
    found: list[tuple[str, Example]] = []
    for path in sorted(PAGES.glob("TBP*.md")):
        code = path.stem
        counts = {"bad": 0, "good": 0}
        for match in BLOCK.finditer(path.read_text(encoding="utf-8")):
            kind, source = match.group(1), match.group(2)
            counts[kind] += 1
            ident = f"{code}-{kind}-{counts[kind]}"
            found.append(
                (ident, Example(code, kind, source, f"{path.name} {kind} #{counts[kind]}"))
            )
    return found


def class_examples() -> list[tuple[str, Example]]:
    found: list[tuple[str, Example]] = []
    for rule in ALL_RULES:
        for label, kind, snippets in (
            ("INVALID", "bad", rule.INVALID),
            ("VALID", "good", rule.VALID),
        ):
            for number, source in enumerate(snippets, start=1):
                ident = f"{rule.code}-{label}-{number}"
                found.append(
                    (
                        ident,
                        Example(rule.code, kind, source, f"{rule.__name__}.{label}[{number - 1}]"),
                    )
                )
    return found


def codes_found(source: str) -> list[str]:
    """Every code any rule reports for `source`; a syntax error counts as its own code."""
    try:
        findings = check_source(source, "example.py", Settings())
    except SourceSyntaxError:
        return [SYNTAX_ERROR_CODE]
    return [finding.code for finding in findings]


def check_example(example: Example) -> None:
    found = codes_found(example.source)
    if example.kind == "good":
        assert found == [], f"{example.origin} must be silent, got {found}:\n{example.source}"
        return
    relevant = enabled_codes((), ()) | {example.code}
    reported = {code for code in found if code in relevant}
    assert reported == {example.code}, (
        f"{example.origin} must trigger exactly {example.code}, got {sorted(reported)} "
        f"(all findings: {found}):\n{example.source}"
    )


PAGE_EXAMPLES = page_examples()
CLASS_EXAMPLES = class_examples()


@pytest.mark.parametrize(
    "example", [e for _, e in CLASS_EXAMPLES], ids=[i for i, _ in CLASS_EXAMPLES]
)
def test_class_example(example: Example) -> None:
    check_example(example)


def test_page_examples_were_found() -> None:
    assert PAGE_EXAMPLES, f"no ```python bad/good blocks under {PAGES}"


def test_the_plugin_checks_every_page_example(pytestconfig: pytest.Config) -> None:
    """The page examples are test items of the plugin: every page is collected, every block."""
    from tbptt_lint.pytest_plugin import _EXAMPLE_BLOCK, _is_rule_page

    assert "rules" in pytestconfig.getini("testpaths")
    pages = sorted(PAGES.glob("TBP*.md"))
    assert [p.name for p in pages if not _is_rule_page(p, pytestconfig)] == []
    assert not _is_rule_page(PAGES / "README.md", pytestconfig)
    blocks = sum(len(_EXAMPLE_BLOCK.findall(p.read_text(encoding="utf-8"))) for p in pages)
    assert blocks == len(PAGE_EXAMPLES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.code for rule in ALL_RULES])
def test_every_rule_has_a_page(rule: type[Rule]) -> None:
    assert page_path(rule.code).is_file(), f"missing page {page_path(rule.code)}"


def test_every_page_belongs_to_a_rule() -> None:
    strays = [
        p.name for p in PAGES.glob("*.md") if p.stem != "README" and p.stem not in RULES_BY_CODE
    ]
    assert strays == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.code for rule in ALL_RULES])
def test_page_header_matches_the_rule(rule: type[Rule]) -> None:
    text = page_text(rule.code)
    title = text.splitlines()[0]
    assert title == f"# {rule.code} {rule.name}"
    header = HEADER.search(text)
    assert header is not None, f"{rule.code}.md has no 'Severity: … · Default: … · Fix: …' line"
    assert header["severity"] == rule.severity.value
    assert header["default"] == ("on" if rule.default_enabled else "off")
    assert header["fix"] == (rule.fix_availability or "none")
    if rule.fix_availability == "unsafe":
        assert "--unsafe-fixes" in header["rest"]


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.code for rule in ALL_RULES])
def test_page_has_bad_and_good_examples(rule: type[Rule]) -> None:
    kinds = {e.kind for _, e in PAGE_EXAMPLES if e.code == rule.code}
    if rule.code in NO_CODE_EXAMPLES:
        assert kinds == set(), f"{rule.code}.md documents a path condition; use ```text blocks"
        return
    assert kinds == {"bad", "good"}, f"{rule.code}.md needs at least one bad and one good block"


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.code for rule in ALL_RULES])
def test_page_has_the_sections(rule: type[Rule]) -> None:
    headings = re.findall(r"^## (.+)$", page_text(rule.code), re.MULTILINE)
    for section in (
        "What it finds",
        "Why it matters",
        "Example",
        "Use instead",
        "How to fix",
        "Not reported",
        "Related",
    ):
        assert section in headings, f"{rule.code}.md lacks '## {section}'"


def test_page_fences_are_labelled() -> None:
    """Every fence opening is ```python bad, ```python good, ```text or ```toml/```console."""
    allowed = {("python", "bad"), ("python", "good")}
    plain = {"text", "toml", "console", "shell", "bash"}
    for path in sorted(PAGES.glob("*.md")):
        opening = True
        for match in FENCE.finditer(path.read_text(encoding="utf-8")):
            if opening:
                label = (match.group(1), match.group(2))
                assert label in allowed or (label[0] in plain and label[1] is None), (
                    f"{path.name}: fence ```{match.group(1)} {match.group(2) or ''}"
                )
            opening = not opening


@pytest.mark.parametrize("rule", ALL_RULES, ids=[rule.code for rule in ALL_RULES])
def test_index_lists_the_rule(rule: type[Rule]) -> None:
    index = (PAGES / "README.md").read_text(encoding="utf-8")
    rows = [
        line for line in index.splitlines() if line.startswith("|") and f"({rule.code}.md)" in line
    ]
    assert len(rows) == 1, f"README.md must have one table row linking {rule.code}.md"
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert rule.name in rows[0]
    assert rule.severity.value in cells
    assert ("on" if rule.default_enabled else "off") in cells
    assert (rule.fix_availability or "none") in cells
