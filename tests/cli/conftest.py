"""Fixtures for the CLI tests: run `main()` in-process, a project directory, a fake analysis."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import fake_check_source

from tbptt_lint import engine
from tbptt_lint.analysis import ModuleSummary
from tbptt_lint.cli import main


@dataclass
class CliRun:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    """Run `tbptt-lint ARGS...` in-process; returns the exit code and captured output."""

    def run(*args: str) -> CliRun:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run


@pytest.fixture
def fake_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the analysis with the marker-based fake (in-process only, so jobs are 1)."""
    monkeypatch.setattr(engine, "check_source", fake_check_source)
    monkeypatch.setattr(engine, "available_cpus", lambda: 1)
    real_summarize = engine.summarize_source

    def summarize_for_the_fake(source: str, module_name: str) -> ModuleSummary:
        # The fake finds markers in any file, so no file may be skipped by the real prefilter.
        return dataclasses.replace(real_summarize(source, module_name), may_hold_findings=True)

    monkeypatch.setattr(engine, "summarize_source", summarize_for_the_fake)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, made the working directory. Its `.git` marks the repository
    root, so .gitignore files above it are not consulted."""
    root = tmp_path / "project"
    root.mkdir()
    (root / ".git").mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TBPTT_LINT_DEBUG", raising=False)
    return root
