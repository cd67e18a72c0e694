"""`pytest --tbptt-lint`: which files become items, how they are counted and narrowed, how a
bad `[tool.tbptt-lint]` stops the run, and how failures read. Needs the linter, not torch."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

# TBP001: the hidden state is carried into the next window's backward without a cut. Imports
# inside the function: pytest imports a file named on its command line, and torch is not needed.
BUGGY = textwrap.dedent(
    """
    def train(x, y):
        import torch
        from torch import nn

        model = nn.LSTM(4, 8)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        hidden = None
        for i in range(0, x.size(0), 10):
            out, hidden = model(x[i : i + 10], hidden)
            loss = (out - y[i : i + 10]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """tests in test_a.py; src/ has one buggy and one clean file, and three buggy files the
    linter's own discovery skips: excluded by config, ignored by git, in a virtualenv."""
    pytest.importorskip("tbptt_lint.engine")
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        tbptt_lint_paths = ["src"]

        [tool.tbptt-lint]
        extend-exclude = ["src/legacy"]
        """
    )
    pytester.makepyfile(test_a="def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    for relative, text in {
        "src/loop.py": BUGGY,
        "src/clean.py": "def f():\n    return 1\n",
        "src/legacy/old.py": BUGGY,
        "src/generated/gen.py": BUGGY,
        "src/.venv/lib/site.py": BUGGY,
        "src/.gitignore": "generated/\n",
    }.items():
        path = pytester.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tbptt-lint", *args)


def _listed(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if "::" in line and " " not in line]


def test_lint_paths_are_found_as_the_cli_finds_them(project: pytest.Pytester):
    from tbptt_lint.config import load_settings
    from tbptt_lint.discovery import discover

    result = _run(project, "--co", "-q")
    src_items = sorted(nodeid for nodeid in _listed(result) if nodeid.startswith("src/"))
    assert src_items == ["src/clean.py::TBPTT-LINT", "src/loop.py::TBPTT-LINT"], result.stdout
    # The same files as the command line's discovery, for the same settings.
    cli = discover([project.path / "src"], load_settings(cwd=project.path)).files
    assert [f"{p.relative_to(project.path).as_posix()}::TBPTT-LINT" for p in cli] == src_items


def test_lint_items_are_counted_as_collected(project: pytest.Pytester):
    listed = _run(project, "--co", "-q")
    ids = _listed(listed)
    listed.stdout.fnmatch_lines([f"{len(ids)} tests collected in *"])
    assert ids == [
        "test_a.py::TBPTT-LINT",
        "test_a.py::test_one",
        "test_a.py::test_two",
        "src/clean.py::TBPTT-LINT",
        "src/loop.py::TBPTT-LINT",
    ]
    deselected = _run(project, "--co", "-q", "-k", "not loop")
    deselected.stdout.fnmatch_lines(["4/5 tests collected (1 deselected) in *"])
    run = _run(project)
    run.stdout.fnmatch_lines(["collected 5 items"])
    run.assert_outcomes(passed=4, failed=1)


def test_node_ids_narrow_the_run(project: pytest.Pytester):
    # An IDE running one test: only that test, not the files of tbptt_lint_paths.
    one_test = _run(project, "test_a.py::test_one", "-v")
    one_test.assert_outcomes(passed=1)
    one_test.stdout.fnmatch_lines(["*collected 1 item"])
    # One lint item by node id, even one of tbptt_lint_paths: just that one.
    one_lint = _run(project, "src/loop.py::TBPTT-LINT", "-v")
    one_lint.assert_outcomes(failed=1)
    one_lint.stdout.fnmatch_lines(["src/loop.py::TBPTT-LINT FAILED *"])
    # A directory or file is not a node id: tbptt_lint_paths are still linted.
    whole_file = _run(project, "test_a.py", "--co", "-q")
    assert "src/loop.py::TBPTT-LINT" in _listed(whole_file)


def test_bad_config_stops_the_run_as_a_usage_error(project: pytest.Pytester):
    (project.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntbptt_lint_paths = ["src"]\n\n'
        '[tool.tbptt-lint]\nextend-exclude = "src/legacy"\n',
        encoding="utf-8",
    )
    # Without other plugins' start-up warnings (pytest-asyncio warns about its own settings).
    result = _run(project, "-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.lines
    assert errors[0].startswith("ERROR: tbptt-lint: ")
    assert str(project.path / "pyproject.toml") in errors[0] and "extend-exclude" in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    # Without --tbptt-lint the linter's config is not read.
    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_lint_failure_reads_relative_to_the_rootdir(project: pytest.Pytester):
    result = _run(project, "-rf")
    result.stdout.fnmatch_lines(
        [
            "*_ src/loop.py _*",
            "TBP001 (1 finding)",
            "src/loop.py:*:*: TBP001 `hidden` is carried *",
            "FAILED src/loop.py::TBPTT-LINT - TBP001 (1 finding)",
        ]
    )
    result.assert_outcomes(passed=4, failed=1)
    failures = result.stdout.str().partition(" FAILURES ")[2]
    assert failures and str(project.path) not in failures


def test_xdist_runs_the_same_items(project: pytest.Pytester):
    serial = _run(project, "-q")
    parallel = _run(project, "-q", "-n", "2")
    parallel.assert_outcomes(**serial.parseoutcomes())
    parallel.stdout.fnmatch_lines(["FAILED src/loop.py::TBPTT-LINT - TBP001 (1 finding)"])


def test_lint_paths_outside_the_rootdir_or_missing(pytester: pytest.Pytester):
    pytest.importorskip("tbptt_lint.engine")
    project = pytester.mkdir("project")
    (pytester.path / "outside").mkdir()
    (pytester.path / "outside" / "loop.py").write_text(BUGGY, encoding="utf-8")
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntbptt_lint_paths = ["../outside", "missing.py"]\n',
        encoding="utf-8",
    )
    (project / "test_a.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--tbptt-lint", f"--rootdir={project}", str(project), "-rf"
    )
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ ../outside/loop.py _*",
            "../outside/loop.py:*: TBP001 *",
            "*_ missing.py _*",
            "missing.py:1:1: TBP901 No such file or directory",
        ]
    )
