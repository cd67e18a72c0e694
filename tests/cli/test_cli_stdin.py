"""`tbptt-lint -` reads the source from stdin, as `ruff check -` does: findings are named with
`--stdin-filename` (else `-`), the configuration and per-file-ignores are those of that name,
and `--fix` prints the fixed source to stdout with the report on stderr."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from cli_helpers import TBP001_LINE, TBP001_SNIPPET, write

DETACH_LINE = "    hidden = tuple(s.detach() for s in hidden)\n"


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch):
    def feed(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    return feed


def test_findings_are_named_with_the_stdin_filename(cli, project, stdin):
    stdin(TBP001_SNIPPET)
    run = cli("-", "--stdin-filename", "src/train.py", "--output-format", "concise")
    assert run.code == 1
    assert f"src/train.py:{TBP001_LINE}:" in run.out
    assert "TBP001" in run.out
    assert "TBP901" not in run.out


def test_without_a_filename_stdin_is_named_dash(cli, project, stdin):
    stdin(TBP001_SNIPPET)
    run = cli("-", "--output-format", "json")
    assert run.code == 1
    found = [(Path(d["filename"]).name, d["code"]) for d in json.loads(run.out)]
    assert found == [("-", "TBP001")]


def test_stdin_filename_alone_reads_stdin(cli, project, stdin):
    write(project / "other.py", "x = 1\n")  # a directory run would find nothing
    stdin(TBP001_SNIPPET)
    run = cli("--stdin-filename", "train.py", "--output-format", "concise")
    assert run.code == 1
    assert f"train.py:{TBP001_LINE}:" in run.out


def test_clean_stdin_exits_zero(cli, project, stdin):
    stdin("x = 1\n")
    assert cli("-", "--stdin-filename", "a.py").code == 0


def test_fix_prints_the_fixed_source_and_reports_on_stderr(cli, project, stdin):
    stdin(TBP001_SNIPPET)
    run = cli("-", "--stdin-filename", "train.py", "--fix", "--unsafe-fixes")
    assert run.code == 0
    assert DETACH_LINE in run.out
    assert run.out.startswith("import torch\n")
    assert "1 fixed" in run.err
    assert not (project / "train.py").exists()


def test_fix_with_nothing_to_fix_echoes_the_source(cli, project, stdin):
    stdin(TBP001_SNIPPET)
    run = cli("-", "--stdin-filename", "train.py", "--fix")  # TBP001's fix is unsafe
    assert run.code == 1
    assert run.out == TBP001_SNIPPET
    assert "TBP001" in run.err


def test_diff_on_stdin_prints_a_diff(cli, project, stdin):
    stdin(TBP001_SNIPPET)
    run = cli("-", "--stdin-filename", "train.py", "--diff", "--unsafe-fixes")
    assert run.code == 1
    assert "+" + DETACH_LINE in run.out


def test_per_file_ignores_apply_to_the_stdin_filename(cli, project, stdin):
    write(
        project / "pyproject.toml", '[tool.tbptt-lint]\nper-file-ignores = {"src/*" = ["TBP001"]}\n'
    )
    stdin(TBP001_SNIPPET)
    assert cli("-", "--stdin-filename", "src/train.py").code == 0
    stdin(TBP001_SNIPPET)
    assert cli("-", "--stdin-filename", "scripts/train.py").code == 1


def test_configuration_is_found_from_the_stdin_filename(cli, project, stdin, monkeypatch):
    write(project / "lib" / "pyproject.toml", '[tool.tbptt-lint]\nignore = ["TBP001"]\n')
    (project / "elsewhere").mkdir()
    monkeypatch.chdir(project / "elsewhere")
    stdin(TBP001_SNIPPET)
    assert cli("-", "--stdin-filename", "../lib/train.py").code == 0
    stdin(TBP001_SNIPPET)
    assert cli("-", "--stdin-filename", "train.py").code == 1


def test_dash_with_other_paths_is_a_usage_error(cli, project, stdin):
    write(project / "a.py", "x = 1\n")
    stdin("x = 1\n")
    run = cli("-", "a.py")
    assert run.code == 2
    assert "stdin" in run.err
