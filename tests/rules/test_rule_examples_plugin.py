"""The pytest plugin turns every ```python bad / ```python good block of a rule page into an item.

The pages are collected when `tbptt_rule_pages` (ini) or `--tbptt-rule-pages` (command line)
names them; ids are `rules/TBP001.md::bad[1]`, failures are plain words, not tracebacks.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

BAD = """\
import torch

cell = torch.nn.GRUCell(3, 4)
opt = torch.optim.SGD(cell.parameters(), lr=0.1)
h = torch.zeros(2, 4)
for x in torch.randn(10, 2, 3):
    h = cell(x, h)
    loss = h.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""

GOOD = BAD.replace("    h = cell(x, h)\n", "    h = cell(x, h.detach())\n")

SILENT = "x = 1\nprint(x)\n"


def fenced(kind: str, source: str) -> str:
    return f"```python {kind}\n{source}```\n"


def page(*blocks: str) -> str:
    """A page in the rules/ format: title, header line, prose and the fenced blocks."""
    parts = [
        "# TBP001 state-not-detached\n",
        "Severity: error · Default: on · Fix: none\n",
        "## Example\n",
        "```text\nnot python\n```\n",
    ]
    return "\n".join(parts + list(blocks))


INDEX = "# Rules\n\n| Code | Name |\n| --- | --- |\n| [TBP001](TBP001.md) | state-not-detached |\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    rules = pytester.mkdir("rules")
    (rules / "TBP001.md").write_text(
        page(fenced("bad", BAD), fenced("good", GOOD), fenced("good", SILENT)), encoding="utf-8"
    )
    (rules / "README.md").write_text(INDEX, encoding="utf-8")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    return pytester


def enable(pytester: pytest.Pytester, patterns: str = "rules/TBP*.md") -> None:
    pytester.makeini(f"[pytest]\ntbptt_rule_pages = {patterns}\n")


def test_one_item_per_example_with_readable_ids(project: pytest.Pytester) -> None:
    enable(project)
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(
        [
            "rules/TBP001.md::bad[[]1[]]",
            "rules/TBP001.md::good[[]1[]]",
            "rules/TBP001.md::good[[]2[]]",
            "test_plain.py::test_plain",
            "4 tests collected*",
        ]
    )
    result.stdout.no_fnmatch_line("*README.md*")
    project.runpytest("-q").assert_outcomes(passed=4)


def test_items_point_at_the_fence_line(project: pytest.Pytester) -> None:
    enable(project)
    items, _ = project.inline_genitems()
    text = (project.path / "rules" / "TBP001.md").read_text(encoding="utf-8").splitlines()
    located = {item.name: item.location for item in items if item.path.suffix == ".md"}
    assert set(located) == {"bad[1]", "good[1]", "good[2]"}
    for name, (relpath, line, _domain) in located.items():
        kind = name.split("[")[0]
        assert relpath == "rules/TBP001.md"
        assert text[line] == f"```python {kind}"
    assert all(item.get_closest_marker("tbptt_rule_example") for item in items[:3])


def test_good_example_with_a_finding_fails_in_plain_words(pytester: pytest.Pytester) -> None:
    pytester.mkdir("rules")
    (pytester.path / "rules" / "TBP001.md").write_text(
        page(fenced("bad", BAD), fenced("good", BAD)), encoding="utf-8"
    )
    enable(pytester)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, failed=1)
    fence = 1 + page(fenced("bad", BAD), "").count("\n")  # 1-based line of the good fence
    result.stdout.fnmatch_lines(
        [
            "*_ TBP001.md::good[[]1[]] _*",
            f"rules/TBP001.md:{fence}: good example 1 of TBP001",
            "expected: no finding from any rule (every rule enabled)",
            "the linter reported (line:col in the example):",
            "  7:*TBP001 * (rules/TBP001.md:*)",
            "      | h = cell(x, h)",
            "FAILED rules/TBP001.md::good[[]1[]]*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*runtest*")


def test_bad_example_that_triggers_nothing_fails(pytester: pytest.Pytester) -> None:
    pytester.mkdir("rules")
    (pytester.path / "rules" / "TBP001.md").write_text(
        page(fenced("bad", SILENT), fenced("bad", GOOD), fenced("good", GOOD)), encoding="utf-8"
    )
    enable(pytester)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ TBP001.md::bad[[]1[]] _*",
            "rules/TBP001.md:*: bad example 1 of TBP001",
            "expected: TBP001 and no other rule that is enabled by default",
            "the linter reported: nothing",
            "*_ TBP001.md::bad[[]2[]] _*",
            "rules/TBP001.md:*: bad example 2 of TBP001",
            "the linter reported: nothing",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_bad_example_must_not_trigger_another_default_rule(pytester: pytest.Pytester) -> None:
    wrong_page = page(fenced("bad", BAD)).replace("TBP001 state-not-detached", "TBP003 x")
    pytester.mkdir("rules")
    (pytester.path / "rules" / "TBP003.md").write_text(wrong_page, encoding="utf-8")
    enable(pytester)
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "rules/TBP003.md:*: bad example 1 of TBP003",
            "expected: TBP003 and no other rule that is enabled by default",
            "  7:* TBP001 *",
        ]
    )


def test_syntax_error_in_a_good_example_is_reported_as_tbp900(pytester: pytest.Pytester) -> None:
    pytester.mkdir("rules")
    (pytester.path / "rules" / "TBP001.md").write_text(
        page(fenced("good", "for x in xs:\n    loss.backward(\n")), encoding="utf-8"
    )
    enable(pytester)
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  *:* TBP900 *"])


def test_off_by_default_md_files_are_not_collected(project: pytest.Pytester) -> None:
    result = project.runpytest("--co", "-q")
    result.stdout.fnmatch_lines(["test_plain.py::test_plain", "1 test collected*"])
    result.stdout.no_fnmatch_line("*.md*")
    project.runpytest("-q", "rules").assert_outcomes()


def test_command_line_option_and_directories(project: pytest.Pytester) -> None:
    # A directory collects every .md under it; the index has no examples and yields nothing.
    result = project.runpytest("--co", "-q", "--tbptt-rule-pages", "rules", "rules")
    result.stdout.fnmatch_lines(["rules/TBP001.md::bad[[]1[]]", "3 tests collected*"])
    result.stdout.no_fnmatch_line("*README*")
    # A pattern without '/' matches file names anywhere.
    enable(project, "TBP*.md")
    project.runpytest("--co", "-q").stdout.fnmatch_lines(["4 tests collected*"])


def test_a_page_with_examples_but_no_rule_code_is_a_collection_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.mkdir("docs")
    (pytester.path / "docs" / "guide.md").write_text(
        "# Guide\n\n" + fenced("bad", BAD), encoding="utf-8"
    )
    result = pytester.runpytest("-q", "--tbptt-rule-pages", "docs")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot tell which rule the page documents*"])


def test_entry_point_plugin_without_the_option_imports_no_linter(
    project: pytest.Pytester,
) -> None:
    """Registered by entry point (a fresh interpreter); off, it loads no analysis or libcst."""
    project.makepyfile(
        test_plain=textwrap.dedent(
            """
            import sys

            def test_nothing_heavy_was_imported():
                assert "tbptt_lint.integrations.pytest_plugin" in sys.modules
                heavy = [m for m in sys.modules if m.startswith(("tbptt_lint.analysis", "libcst"))]
                assert heavy == []
            """
        )
    )
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    enabled = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "--tbptt-rule-pages", "rules/TBP*.md", "rules"
    )
    enabled.assert_outcomes(passed=3)
