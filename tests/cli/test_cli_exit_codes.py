"""Exit codes and how errors are reported: 0 clean, 1 findings, 2 usage/config/internal errors."""

from __future__ import annotations

import builtins
import os
import sys
import types
from pathlib import Path

import pytest
from cli_helpers import fake_check_source, write

from tbptt_lint import __version__, engine

pytestmark = pytest.mark.usefixtures("fake_analysis")


def test_clean_run_exits_0(cli, project):
    write(project / "ok.py", "x = 1\n")
    assert cli().code == 0
    assert cli("check").code == 0
    assert cli("check", "ok.py").code == 0


def test_findings_exit_1_and_exit_zero_turns_it_into_0(cli, project):
    write(project / "bad.py", "bug_call()\n")
    assert cli("bad.py").code == 1
    assert cli("check", "bad.py").code == 1
    run = cli("--exit-zero", "bad.py")
    assert run.code == 0
    assert "TBP001" in run.out


def test_syntax_and_io_errors_count_as_findings(cli, project):
    write(project / "broken.py", "def f(:\n")
    assert cli("broken.py").code == 1
    assert cli("missing.py").code == 1
    assert cli("--exit-zero", "missing.py").code == 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--select", "XYZ1"], "XYZ1"),
        (["--ignore", "TBP001,NOPE"], "NOPE"),
        (["--extend-select", "TBP9999"], "TBP9999"),
        (["--output-format", "xml"], "xml"),
        (["--jobs", "0"], "0"),
        (["--bogus-flag"], "--bogus-flag"),
    ],
)
def test_usage_errors_exit_2_with_one_line(cli, project, args, named):
    write(project / "bad.py", "bug_call()\n")
    run = cli(*args, "bad.py")
    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert run.err.startswith("tbptt-lint: error: ")
    assert named in run.err
    assert "Traceback" not in run.err


def test_config_and_isolated_together_is_a_usage_error(cli, project):
    run = cli("--config", "x.toml", "--isolated")
    assert run.code == 2
    assert "--isolated" in run.err


def test_help_exits_0_and_documents_exit_codes(cli):
    run = cli("--help")
    assert run.code == 0
    assert "exit status:" in run.out
    assert "2  usage or configuration error, or an internal error" in run.out
    assert "--no-cache" in run.out and "results cache" in run.out


def test_version(cli):
    run = cli("--version")
    assert (run.code, run.out) == (0, f"tbptt-lint {__version__}\n")


def test_a_crash_in_one_file_is_reported_and_the_run_continues(
    cli, project, monkeypatch, not_strict
):
    def crashing(source, path, settings, index=None, module_name=None):
        if "crash" in path:
            raise RuntimeError("boom")
        return fake_check_source(source, path, settings, index)

    monkeypatch.setattr(engine, "check_source", crashing)
    write(project / "crash.py", "x = 1\n")
    write(project / "later.py", "bug_call()\n")
    run = cli(".")
    assert run.code == 2
    assert "later.py:1:1: TBP001" in run.out
    assert run.err.splitlines() == [
        "tbptt-lint: error: internal error while checking crash.py: RuntimeError: boom",
        "(run with TBPTT_LINT_DEBUG=1 for the traceback)",
    ]
    # --exit-zero does not hide a crash
    assert cli("--exit-zero", ".").code == 2

    monkeypatch.setenv("TBPTT_LINT_DEBUG", "1")
    run = cli(".")
    assert "Traceback (most recent call last)" in run.err
    assert "RuntimeError: boom" in run.err


def test_an_unexpected_error_outside_the_analysis_is_one_line(
    cli, project, monkeypatch, not_strict
):
    def broken(*args, **kwargs):
        raise ValueError("unexpected")

    monkeypatch.setattr("tbptt_lint.cli.lint_paths", broken)
    run = cli(".")
    assert run.code == 2
    assert run.err.splitlines() == [
        "tbptt-lint: error: internal error: ValueError: unexpected",
        "(run with TBPTT_LINT_DEBUG=1 for the traceback)",
    ]


def test_strict_mode_raises_a_crash_in_one_file_with_its_traceback(cli, project, monkeypatch):
    def crashing(source, path, settings, index=None, module_name=None):
        if "crash" in path:
            raise RuntimeError("boom")
        return fake_check_source(source, path, settings, index)

    monkeypatch.setattr(engine, "check_source", crashing)
    monkeypatch.setenv("TBPTT_LINT_STRICT", "1")
    write(project / "crash.py", "x = 1\n")
    with pytest.raises(RuntimeError, match="boom"):
        cli(".")
    with pytest.raises(RuntimeError, match="boom"):
        cli("--fix", ".")  # the fixing path too
    # "0" is off, as unset
    monkeypatch.setenv("TBPTT_LINT_STRICT", "0")
    assert cli(".").code == 2


def test_strict_mode_raises_a_crash_in_phase_1(cli, project, monkeypatch):
    def crashing(source, module_name):
        raise TypeError("phase 1")

    monkeypatch.setattr(engine, "summarize_source", crashing)
    monkeypatch.setenv("TBPTT_LINT_STRICT", "1")
    write(project / "a.py", "x = 1\n")
    with pytest.raises(TypeError, match="phase 1"):
        cli(".")
    monkeypatch.delenv("TBPTT_LINT_STRICT")
    run = cli(".")
    assert run.code == 2
    assert "internal error while checking a.py: TypeError: phase 1" in run.err


def test_strict_mode_raises_an_unexpected_error_outside_the_analysis(cli, project, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("unexpected")

    monkeypatch.setattr("tbptt_lint.cli.lint_paths", broken)
    monkeypatch.setenv("TBPTT_LINT_STRICT", "1")
    with pytest.raises(ValueError, match="unexpected"):
        cli(".")


def test_worker_processes_take_strict_mode_from_the_run(monkeypatch):
    # The fork server keeps the environment it started with; each pool says which mode it runs.
    from tbptt_lint.settings import Settings
    from tbptt_lint.strict import STRICT_ENV, strict

    monkeypatch.delenv(STRICT_ENV, raising=False)
    engine._init_worker(Settings(), None, True)
    assert strict()
    engine._init_worker(Settings(), None, False)
    assert not strict() and STRICT_ENV not in os.environ


def test_trace_without_torch_explains_the_extra(cli, monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.startswith("tbptt_lint.tracer"):
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    run = cli("trace", "train.py")
    assert run.code == 2
    assert run.err == (
        "tbptt-lint: error: the trace command needs the trace extra: "
        "pip install 'tbptt-lint[trace]'\n"
    )


def test_trace_is_dispatched_with_its_arguments(cli, monkeypatch):
    received: list[list[str]] = []
    fake = types.ModuleType("tbptt_lint.tracer.cli")

    def run_trace_command(argv: list[str]) -> int:
        received.append(argv)
        return 3

    fake.run_trace_command = run_trace_command  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tbptt_lint.tracer.cli", fake)
    assert cli("trace", "train.py", "--k1", "5").code == 3
    assert received == [["train.py", "--k1", "5"]]


def test_a_path_named_like_a_command_needs_dot_slash(cli, project):
    # `check` is optional, so the first word is a command only when it is one of ours.
    write(project / "src" / "a.py", "bug_call()\n")
    assert cli("src").code == 1
    assert cli(str(Path("src") / "a.py")).code == 1
