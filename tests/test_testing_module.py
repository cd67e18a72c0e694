"""`tbptt_lint.testing`: the `# expect:` comments and rule-page examples the tests share."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tbptt_lint import testing
from tbptt_lint.rules.tbp001_state_not_detached import StateNotDetached

SOURCE = """\
h = h0
for x in xs:  # expect: TBP001
    h = cell(x, h)  # expect: TBP006, TBP012
    y = 1  # expected: nothing, a comment that only looks alike
"""


def test_expected_lines_in_source_order() -> None:
    assert testing.expected_lines(SOURCE) == [("TBP001", 2), ("TBP006", 3), ("TBP012", 3)]
    assert testing.expected_codes(SOURCE) == {"TBP001", "TBP006", "TBP012"}
    assert testing.expected_lines("x = 1\n") == []


def test_page_examples_are_numbered_per_kind_with_their_fence_line() -> None:
    page = "# TBP001 x\n\n```python bad\na = 1\n```\n\n```python good\nb = 2\n```\n"
    examples = testing.page_examples(page, "TBP001", "TBP001.md")
    assert [(e.kind, e.number, e.fence_line, e.source) for e in examples] == [
        ("bad", 1, 2, "a = 1\n"),
        ("good", 1, 6, "b = 2\n"),
    ]
    assert testing.page_rule_code(page, Path("anything.md")) == "TBP001"
    assert testing.page_rule_code("no title", Path("TBP002.md")) == "TBP002"
    assert testing.page_rule_code("no title", Path("index.md")) is None


def test_example_problem() -> None:
    silent = testing.Example("TBP001", "good", "x = 1\n", "silent")
    assert testing.example_problem(silent) is None
    bug = textwrap.dedent(StateNotDetached.INVALID[0])
    assert testing.example_problem(testing.Example("TBP001", "bad", bug, "bad")) is None
    problem = testing.example_problem(testing.Example("TBP001", "good", bug, "good"))
    assert problem is not None
    assert "TBP001" in [f.code for f, _ in problem.findings]
    unknown = testing.Example("TBP999", "bad", "x = 1\n", "unknown")
    problem = testing.example_problem(unknown)
    assert problem is not None and "no rule TBP999" in problem.expected
