"""Suppression comments, through the CLI and on the noqa module itself."""

from __future__ import annotations

import json

import pytest
from cli_helpers import write

from tbptt_lint.diagnostics import Finding
from tbptt_lint.noqa import apply_noqa, parse_directives

pytestmark = pytest.mark.usefixtures("fake_analysis")


def lint(cli, project, source: str) -> tuple[list[tuple[str, int]], str]:
    write(project / "a.py", source)
    run = cli("--output-format", "json", "a.py")
    found = [(item["code"], item["location"]["row"]) for item in json.loads(run.out)]
    return found, run.err


@pytest.mark.parametrize(
    "comment",
    [
        "# noqa",
        "# NOQA",
        "#noqa",
        "# noqa: TBP001",
        "# noqa:TBP001",
        "# noqa: TBP002,TBP001",
        "# noqa: TBP002, TBP001",
        "# noqa:TBP002 TBP001",
        "# noqa: tbp001",
        "# type: ignore  # noqa: TBP001",
    ],
)
def test_line_noqa_variants_suppress(cli, project, comment):
    found, err = lint(cli, project, f"bug_call()  {comment}\nbug_call()\n")
    assert found == [("TBP001", 2)]
    assert err == ""


def test_noqa_for_another_code_does_not_suppress(cli, project):
    found, _ = lint(cli, project, "bug_call()  # noqa: TBP002\nwarn_call()  # noqa: TBP004\n")
    assert found == [("TBP001", 1)]


def test_noqa_only_on_the_reported_line(cli, project):
    found, _ = lint(cli, project, "# noqa\nbug_call()\n")
    assert found == [("TBP001", 2)]


def test_noqa_inside_a_string_does_not_count(cli, project):
    found, _ = lint(cli, project, 'bug_call("# noqa")\n')
    assert found == [("TBP001", 1)]


def test_noqa_prefix_of_another_word_does_not_count(cli, project):
    found, _ = lint(cli, project, "bug_call()  # noqanything\n")
    assert found == [("TBP001", 1)]


def test_file_level_noqa(cli, project):
    found, _ = lint(cli, project, "# tbptt-lint: noqa\nbug_call()\nwarn_call()\n")
    assert found == []
    found, _ = lint(cli, project, "x = 1\n    # TBPTT-LINT: NOQA\nbug_call()\n")
    assert found == []


def test_file_level_noqa_with_codes(cli, project):
    found, _ = lint(cli, project, "# tbptt-lint: noqa: TBP004\nbug_call()\nwarn_call()\n")
    assert found == [("TBP001", 2)]


def test_file_level_noqa_after_code_is_not_file_level(cli, project):
    found, _ = lint(cli, project, "x = 1  # tbptt-lint: noqa\nbug_call()\n")
    assert found == [("TBP001", 2)]


def test_unknown_code_warns_and_does_not_suppress(cli, project):
    found, err = lint(cli, project, "x = 1\nbug_call()  # noqa: XYZ123\n")
    assert found == [("TBP001", 2)]
    assert err == "a.py:2: warning: unknown rule code XYZ123 in noqa directive\n"


def test_unknown_code_next_to_a_known_one(cli, project):
    found, err = lint(cli, project, "bug_call()  # noqa: XYZ123, TBP001\n")
    assert found == []
    assert "unknown rule code XYZ123" in err


def test_syntax_errors_cannot_be_suppressed(cli, project):
    found, _ = lint(cli, project, "# tbptt-lint: noqa\nx = (  # noqa\n")
    assert [code for code, _ in found] == ["TBP900"]


def test_falls_back_to_a_line_scan_when_tokenize_fails():
    # An unterminated triple-quoted string makes tokenize fail.
    source = 'bug_call()  # noqa: TBP001\ns = """\n'
    directives = parse_directives(source)
    assert directives.by_line[1].codes == frozenset({"TBP001"})


def test_apply_noqa_keeps_order_and_reports_each_unknown_code_once():
    source = "a  # noqa: ABC1\nb\n"
    findings = [
        Finding("TBP001", "m", 1, 1, 1, 2),
        Finding("TBP004", "m", 1, 1, 1, 2),
        Finding("TBP001", "m", 2, 1, 2, 2),
    ]
    kept, warnings = apply_noqa(findings, source, "f.py")
    assert kept == findings
    assert warnings == ["f.py:1: warning: unknown rule code ABC1 in noqa directive"]
