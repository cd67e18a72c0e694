"""Rule selection on the command line: --select, --ignore, --extend-select, prefixes, TBP007."""

from __future__ import annotations

import json

import pytest
from cli_helpers import write

pytestmark = pytest.mark.usefixtures("fake_analysis")

SOURCE = "bug_call()\npartial_call()\nwarn_call()\nnofix_call()\ndata_call()\nx = (\n"


@pytest.fixture
def codes(cli, project):
    write(project / "a.py", "bug_call()\npartial_call()\nwarn_call()\nnofix_call()\ndata_call()\n")

    def run(*args: str) -> list[str]:
        result = cli("--output-format", "json", *args, "a.py")
        return [item["code"] for item in json.loads(result.out)]

    return run


def test_defaults_leave_tbp007_off(codes):
    assert codes() == ["TBP001", "TBP002", "TBP004", "TBP008"]


def test_select_exact_codes(codes):
    assert codes("--select", "TBP001,TBP004") == ["TBP001", "TBP004"]
    # repeated options add up
    assert codes("--select", "TBP001", "--select", "TBP008") == ["TBP001", "TBP008"]


def test_select_by_prefix_and_lower_case(codes):
    assert codes("--select", "TBP00") == ["TBP001", "TBP002", "TBP004", "TBP008"]
    assert codes("--select", "tbp001") == ["TBP001"]


def test_tbp007_only_by_its_exact_code(codes):
    assert "TBP007" not in codes("--select", "TBP0")
    assert "TBP007" not in codes("--select", "ALL")
    assert codes("--select", "TBP007") == ["TBP007"]
    assert codes("--extend-select", "TBP007") == ["TBP001", "TBP002", "TBP004", "TBP007", "TBP008"]


def test_ignore_codes_and_prefixes(codes):
    assert codes("--ignore", "TBP002,TBP008") == ["TBP001", "TBP004"]
    assert codes("--ignore", "TBP00") == []


def test_ignore_wins_over_extend_select_on_the_command_line(codes):
    assert codes("--extend-select", "TBP007", "--ignore", "TBP007") == [
        "TBP001",
        "TBP002",
        "TBP004",
        "TBP008",
    ]


def test_syntax_errors_are_reported_whatever_select_says(cli, project):
    write(project / "broken.py", "x = (\n")
    run = cli("--select", "TBP001", "--output-format", "concise", "broken.py", "gone.py")
    assert run.code == 1
    assert "broken.py:" in run.out and "TBP900" in run.out
    assert "gone.py:1:1: TBP901" in run.out
    # ...unless ignored by name
    run = cli("--ignore", "TBP900,TBP901", "broken.py", "gone.py")
    assert run.code == 0
