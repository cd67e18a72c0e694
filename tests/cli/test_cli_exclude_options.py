"""`--exclude`, `--extend-exclude` and `--force-exclude` on the command line, as in ruff:
`--exclude` replaces the configured (and default) patterns, `--extend-exclude` adds to them, and
`--force-exclude` applies them to paths named explicitly (pre-commit names every file)."""

from __future__ import annotations

import io
import json
import sys

import pytest
from cli_helpers import write

pytestmark = pytest.mark.usefixtures("fake_analysis")

BUG = "bug_call()\n"


def linted(run) -> list[str]:
    return sorted({item["filename"].rsplit("project/", 1)[-1] for item in json.loads(run.out)})


@pytest.fixture
def tree(project):
    for name in ("src/a.py", "gen/g.py", "build/b.py", "legacy/old/l.py"):
        write(project / name, BUG)
    return project


def test_exclude_on_the_command_line_replaces_the_excluded_patterns(cli, tree):
    run = cli("--output-format", "json", "--exclude", "gen,legacy", ".")
    # The default patterns are replaced too, so build/ is linted, as with ruff's --exclude.
    assert linted(run) == ["build/b.py", "src/a.py"]


def test_extend_exclude_on_the_command_line_adds_to_the_configuration(cli, tree):
    write(tree / "pyproject.toml", '[tool.tbptt-lint]\nextend-exclude = ["legacy"]\n')
    run = cli("--output-format", "json", "--extend-exclude", "gen", ".")
    assert linted(run) == ["src/a.py"]


def test_named_files_are_linted_unless_force_exclude(cli, tree):
    write(tree / "pyproject.toml", '[tool.tbptt-lint]\nextend-exclude = ["legacy"]\n')
    named = ("legacy/old/l.py", "build/b.py", "src/a.py")
    assert linted(cli("--output-format", "json", *named)) == sorted(named)
    run = cli("--output-format", "json", "--force-exclude", *named)
    # A directory above the file matching a pattern excludes it, as ruff checks ancestors.
    assert linted(run) == ["src/a.py"]


def test_force_exclude_applies_to_a_named_directory(cli, tree):
    assert linted(cli("--output-format", "json", "--force-exclude", "build", "src")) == ["src/a.py"]


def test_force_exclude_with_only_excluded_files_exits_zero(cli, tree):
    run = cli("--force-exclude", "--extend-exclude", "gen", "gen/g.py")
    assert run.code == 0
    assert "TBP" not in run.out


def test_force_exclude_applies_to_the_stdin_filename(cli, tree, monkeypatch):
    def lint_stdin(*options: str):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BUG.encode())))
        return cli("-", "--stdin-filename", "build/b.py", *options)

    assert lint_stdin().code == 1
    assert lint_stdin("--force-exclude").code == 0
    fixed = lint_stdin("--force-exclude", "--fix")
    assert (fixed.code, fixed.out) == (0, BUG)  # the source is echoed, as ruff does


def test_show_settings_reports_the_command_line_excludes(cli, tree):
    run = cli("--show-settings", "--exclude", "gen", "--extend-exclude", "x,y", "--force-exclude")
    assert 'exclude = ["gen"]' in run.out
    assert 'extend-exclude = ["x", "y"]' in run.out
    assert "force-exclude = true" in run.out


def test_force_exclude_in_the_configuration(cli, tree):
    write(tree / "pyproject.toml", "[tool.tbptt-lint]\nforce-exclude = true\n")
    assert linted(cli("--output-format", "json", "build/b.py", "src/a.py")) == ["src/a.py"]
    # The command line wins, as in ruff.
    run = cli("--output-format", "json", "--no-force-exclude", "build/b.py")
    assert linted(run) == ["build/b.py"]


def test_force_exclude_must_be_a_boolean(cli, tree):
    write(tree / "pyproject.toml", '[tool.tbptt-lint]\nforce-exclude = "yes"\n')
    run = cli("src/a.py")
    assert run.code == 2
    assert "'force-exclude' must be true or false, got a string" in run.err
