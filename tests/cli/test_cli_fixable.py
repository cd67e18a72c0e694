"""`--fixable` and `--unfixable` (codes or prefixes, as in ruff, and the `fixable` and
`unfixable` configuration keys): which findings' fixes `--fix` applies and the report offers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
TBP003 = FIXTURES / "bug_tbp003_detach_result_discarded.py"
TBP008 = FIXTURES / "bug_tbp008_data_instead_of_detach.py"


@pytest.fixture
def files(project):
    for fixture in (TBP003, TBP008):
        shutil.copy(fixture, project / fixture.name)
    return project / TBP003.name, project / TBP008.name


def changed(path: Path, fixture: Path) -> bool:
    return path.read_text() != fixture.read_text()


def test_unfixable_keeps_a_safe_fix_from_being_applied(cli, files):
    tbp003, tbp008 = files
    run = cli("--fix", "--no-cache", "--output-format", "concise", "--unfixable", "TBP003", ".")
    assert run.code == 1
    assert not changed(tbp003, TBP003)
    assert changed(tbp008, TBP008)
    assert "TBP003" in run.out and "TBP008" not in run.out


def test_fixable_limits_the_fixes_to_the_codes_given(cli, files):
    tbp003, tbp008 = files
    cli("--fix", "--no-cache", "--fixable", "TBP008", ".")
    assert (changed(tbp003, TBP003), changed(tbp008, TBP008)) == (False, True)


def test_a_prefix_selects_the_fixable_rules(cli, files):
    tbp003, tbp008 = files
    run = cli("--fix", "--no-cache", "--fixable", "TBP00", "--unfixable", "TBP008", ".")
    assert (changed(tbp003, TBP003), changed(tbp008, TBP008)) == (True, False)
    assert run.code == 1


def test_unfixable_findings_are_not_offered_as_fixable(cli, files):
    run = cli("--no-cache", "--output-format", "concise", "--unfixable", "TBP", ".")
    assert run.code == 1
    assert "TBP003" in run.out
    assert "[*]" not in run.out
    assert "fixable with" not in run.out
    offered = cli("--no-cache", "--output-format", "concise", ".")
    assert "[*]" in offered.out


def test_unfixable_in_the_configuration(cli, files, project):
    (project / "pyproject.toml").write_text('[tool.tbptt-lint]\nunfixable = ["TBP003"]\n')
    tbp003, tbp008 = files
    cli("--fix", "--no-cache", ".")
    assert (changed(tbp003, TBP003), changed(tbp008, TBP008)) == (False, True)


def test_an_unknown_code_is_a_usage_error(cli, files):
    run = cli("--fixable", "XYZ9", ".")
    assert run.code == 2
    assert "unknown rule code or prefix 'XYZ9' in --fixable" in run.err
