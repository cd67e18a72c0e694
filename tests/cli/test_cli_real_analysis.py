"""CLI tests that need the real analysis, not the fake of the other modules.

They use the snippet the analysis guarantees to report as TBP001 on line 8, and they fail while
`tbptt_lint.analysis.check_source` is a stub:
    test_text_report_of_a_real_finding
    test_json_and_sarif_of_a_real_finding
    test_github_annotation_of_a_real_finding
    test_exit_codes_with_a_real_finding
    test_noqa_suppresses_a_real_finding
    test_per_file_ignores_suppress_a_real_finding
    test_real_finding_survives_encodings_and_line_endings
    test_jobs_2_equals_jobs_1_with_real_findings
(test_cli_engine.py::test_jobs_2_gives_the_same_result_as_jobs_1 also runs the real analysis.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import TBP001_LINE, TBP001_SNIPPET, write

SNIPPET_LINE = "    out, hidden = rnn(x, hidden)"


@pytest.fixture
def train(project: Path) -> Path:
    return write(project / "train.py", TBP001_SNIPPET)


def test_text_report_of_a_real_finding(cli, train):
    run = cli("--isolated", "--select", "TBP001", "train.py")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].startswith(f"train.py:{TBP001_LINE}:")
    assert " TBP001 " in lines[0]
    assert f"{TBP001_LINE} | {SNIPPET_LINE}" in lines
    # The fix of TBP001 is unsafe, so the summary says how to enable it, as ruff does.
    assert lines[-2:] == [
        "Found 1 error.",
        "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option).",
    ]


def test_json_and_sarif_of_a_real_finding(cli, train):
    items = json.loads(cli("--isolated", "--select", "TBP001", "--output-format", "json").out)
    assert [(i["code"], i["location"]["row"]) for i in items] == [("TBP001", TBP001_LINE)]
    assert items[0]["filename"] == str(train.resolve())
    log = json.loads(cli("--isolated", "--select", "TBP001", "--output-format", "sarif").out)
    [result] = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (result["ruleId"], region["startLine"]) == ("TBP001", TBP001_LINE)


def test_github_annotation_of_a_real_finding(cli, train):
    run = cli("--isolated", "--select", "TBP001", "--output-format", "github")
    assert run.out.startswith(
        f"::error title=tbptt-lint (TBP001),file=train.py,line={TBP001_LINE},col="
    )


def test_exit_codes_with_a_real_finding(cli, train):
    assert cli("--isolated", "train.py").code == 1
    assert cli("--isolated", "--exit-zero", "train.py").code == 0
    assert cli("--isolated", "--ignore", "TBP001", "--select", "TBP001", "train.py").code == 0


@pytest.mark.parametrize("comment", ["# noqa", "# noqa: TBP001", "# NOQA:TBP001"])
def test_noqa_suppresses_a_real_finding(cli, project, comment):
    write(project / "train.py", TBP001_SNIPPET)
    assert cli("--isolated", "--select", "TBP001", "train.py").code == 1
    source = TBP001_SNIPPET.replace(SNIPPET_LINE, f"{SNIPPET_LINE}  {comment}")
    write(project / "train.py", source)
    run = cli("--isolated", "--select", "TBP001", "train.py")
    assert run.code == 0, run.out
    write(project / "train.py", "# tbptt-lint: noqa\n" + TBP001_SNIPPET)
    assert cli("--isolated", "train.py").code == 0


def test_per_file_ignores_suppress_a_real_finding(cli, project):
    write(project / "scripts" / "train.py", TBP001_SNIPPET)
    write(project / "tbptt-lint.toml", '[per-file-ignores]\n"scripts/*" = ["TBP001"]\n')
    assert cli("--select", "TBP001", "scripts").code == 0
    assert cli("--isolated", "--select", "TBP001", "scripts").code == 1


@pytest.mark.parametrize("variant", ["crlf", "bom", "latin1"])
def test_real_finding_survives_encodings_and_line_endings(cli, project, variant):
    if variant == "crlf":
        data = TBP001_SNIPPET.replace("\n", "\r\n").encode()
        line = TBP001_LINE
    elif variant == "bom":
        data = b"\xef\xbb\xbf" + TBP001_SNIPPET.encode()
        line = TBP001_LINE
    else:
        data = ("# coding: latin-1\n# caf\xe9\n" + TBP001_SNIPPET).encode("latin-1")
        line = TBP001_LINE + 2
    (project / "train.py").write_bytes(data)
    items = json.loads(cli("--isolated", "--select", "TBP001", "--output-format", "json").out)
    assert [(i["code"], i["location"]["row"]) for i in items] == [("TBP001", line)]


def test_jobs_2_equals_jobs_1_with_real_findings(cli, project):
    for index in range(4):
        write(project / f"train{index}.py", TBP001_SNIPPET)
    one = cli("--isolated", "--jobs", "1", "--output-format", "json")
    two = cli("--isolated", "--jobs", "2", "--output-format", "json")
    assert one.out == two.out
    assert [i["code"] for i in json.loads(one.out)].count("TBP001") == 4
