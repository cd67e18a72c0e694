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
from pathlib import Path

import pytest

from tbptt_lint import testing
from tbptt_lint.rules import (
    ALL_RULES,
    IO_ERROR_CODE,
    RULES_BY_CODE,
)
from tbptt_lint.rules.base import Rule
from tbptt_lint.testing import Example

PAGES = Path(__file__).resolve().parents[2] / "rules"
BLOCK = testing.EXAMPLE_BLOCK
FENCE = re.compile(r"^```(\S*)(?:[ \t]+(\S+))?", re.MULTILINE)
HEADER = re.compile(
    r"^Severity: (?P<severity>\w+) · Default: (?P<default>on|off) · Fix: (?P<fix>\w+)(?P<rest>.*)$",
    re.MULTILINE,
)
# Pages that document a condition of the path rather than of source text have no code.
NO_CODE_EXAMPLES = {IO_ERROR_CODE}


def page_path(code: str) -> Path:
    return PAGES / f"{code}.md"


def page_text(code: str) -> str:
    return page_path(code).read_text(encoding="utf-8")


def page_examples() -> list[tuple[str, Example]]:
    """(test id, example) for every fenced bad/good block of every page."""
    found: list[tuple[str, Example]] = []
    for path in sorted(PAGES.glob("TBP*.md")):
        text = path.read_text(encoding="utf-8")
        for example in testing.page_examples(text, path.stem, path.name):
            found.append((f"{path.stem}-{example.kind}-{example.number}", example))
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
                origin = f"{rule.__name__}.{label}[{number - 1}]"
                found.append((ident, Example(rule.code, kind, source, origin, number)))
    return found


def check_example(example: Example) -> None:
    problem = testing.example_problem(example, RULES_BY_CODE)
    found = [] if problem is None else [f.code for f, _ in problem.findings]
    assert problem is None, (
        f"{example.origin} must trigger {problem.expected}, got {found}:\n{example.source}"
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
    from tbptt_lint.pytest_plugin import _is_rule_page

    assert "rules" in pytestconfig.getini("testpaths")
    pages = sorted(PAGES.glob("TBP*.md"))
    assert [p.name for p in pages if not _is_rule_page(p, pytestconfig)] == []
    assert not _is_rule_page(PAGES / "README.md", pytestconfig)
    blocks = sum(len(BLOCK.findall(p.read_text(encoding="utf-8"))) for p in pages)
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
