"""Which files get linted: walking, excludes, .gitignore, explicit files, symlinks, bad paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import write

from tbptt_lint.discovery import GitIgnore, discover, glob_to_regex
from tbptt_lint.settings import Settings

pytestmark = pytest.mark.usefixtures("fake_analysis")


def found(project: Path, *paths: str, **settings: object) -> list[str]:
    result = discover(paths or ["."], Settings(project_root=project, **settings))
    return [p.as_posix() for p in result.files]


def test_walks_recursively_sorted_and_only_python_files(project):
    write(project / "b.py", "")
    write(project / "a" / "z.py", "")
    write(project / "a" / "notes.txt", "")
    write(project / "a" / "stub.pyi", "")
    write(project / "a" / "y" / "x.py", "")
    assert found(project) == ["a/y/x.py", "a/z.py", "b.py"]


def test_default_excludes(project):
    for name in (".venv", "build", "node_modules", "__pycache__", ".git", "site-packages"):
        write(project / name / "m.py", "")
    write(project / "src" / "dist" / "m.py", "")
    write(project / "src" / "ok.py", "")
    assert found(project) == ["src/ok.py"]


def test_exclude_replaces_defaults_and_extend_exclude_adds(project):
    write(project / "build" / "m.py", "")
    write(project / "legacy" / "old.py", "")
    write(project / "src" / "gen_model.py", "")
    write(project / "src" / "model.py", "")
    assert found(project, exclude=("legacy",)) == [
        "build/m.py",
        "src/gen_model.py",
        "src/model.py",
    ]
    assert found(project, extend_exclude=("src/gen_*.py",)) == ["legacy/old.py", "src/model.py"]


def test_exclude_patterns_are_relative_to_the_project_root(project, monkeypatch):
    write(project / "src" / "legacy" / "a.py", "")
    write(project / "src" / "b.py", "")
    write(project / "other" / "src" / "legacy" / "c.py", "")
    assert found(project, "other", extend_exclude=("src/legacy",)) == ["other/src/legacy/c.py"]
    assert found(project, extend_exclude=("**/legacy",)) == ["src/b.py"]
    monkeypatch.chdir(project / "src")
    result = discover(["."], Settings(project_root=project, extend_exclude=("src/legacy",)))
    assert [p.as_posix() for p in result.files] == ["b.py"]


def test_gitignore_root_and_nested(project):
    write(project / ".gitignore", "generated/\n*_pb2.py\n")
    write(project / "generated" / "a.py", "")
    write(project / "model_pb2.py", "")
    write(project / "pkg" / ".gitignore", "scratch.py\n!keep_pb2.py\n")
    write(project / "pkg" / "scratch.py", "")
    write(project / "pkg" / "keep_pb2.py", "")
    write(project / "pkg" / "drop_pb2.py", "")
    write(project / "pkg" / "train.py", "")
    write(project / "scratch.py", "")
    assert found(project) == ["pkg/keep_pb2.py", "pkg/train.py", "scratch.py"]


def test_gitignore_of_the_repository_applies_when_linting_a_subdirectory(project):
    write(project / ".gitignore", "sub/skip.py\n")
    write(project / "sub" / "skip.py", "")
    write(project / "sub" / "keep.py", "")
    assert found(project, "sub") == ["sub/keep.py"]


def test_a_gitignored_directory_named_explicitly_is_walked(project):
    write(project / ".gitignore", "vendor/\n")
    write(project / "vendor" / "lib" / "a.py", "")
    write(project / "vendor" / "lib" / ".gitignore", "b.py\n")
    write(project / "vendor" / "lib" / "b.py", "")
    write(project / "main.py", "")
    assert found(project) == ["main.py"]
    assert found(project, "vendor/lib") == ["vendor/lib/a.py"]


def test_explicit_files_are_always_linted(project):
    write(project / ".gitignore", "ignored.py\n")
    write(project / "ignored.py", "")
    write(project / "build" / "gen.py", "")
    write(project / "script", "")
    assert found(project, "ignored.py", "build/gen.py", "script") == [
        "build/gen.py",
        "ignored.py",
        "script",
    ]


def test_duplicates_are_linted_once(project):
    write(project / "a.py", "")
    assert found(project, ".", "a.py", "./a.py") == ["a.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_terminates(project):
    write(project / "pkg" / "a.py", "")
    (project / "pkg" / "loop").symlink_to(project / "pkg", target_is_directory=True)
    (project / "pkg" / "up").symlink_to(project, target_is_directory=True)
    assert found(project) == ["pkg/a.py"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinked_directory_outside_is_followed_once(project, tmp_path):
    write(tmp_path / "shared" / "s.py", "")
    (project / "link").symlink_to(tmp_path / "shared", target_is_directory=True)
    assert found(project) == ["link/s.py"]


def test_nonexistent_path_is_a_tbp901_and_the_run_continues(cli, project):
    write(project / "a.py", "bug_call()\n")
    run = cli("--output-format", "concise", "nope.py", "a.py")
    assert run.code == 1
    assert run.out.splitlines() == [
        "a.py:1:1: TBP001 fake TBP001 at `bug_call()`",
        "nope.py:1:1: TBP901 No such file or directory",
        "Found 2 errors.",
    ]


def test_directory_without_python_files_warns_and_exits_0(cli, project):
    write(project / "docs" / "index.md", "")
    run = cli("docs")
    assert run.code == 0
    assert run.err == "tbptt-lint: warning: No Python files found under docs\n"
    assert run.out == "All checks passed!\n"
    assert cli("-q", "docs").err == ""


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "d/a.py", False),
        ("**/*.py", "d/e/a.py", True),
        ("**/*.py", "a.py", True),
        ("tests/**", "tests/x/y.py", True),
        ("{a,b}.py", "b.py", True),
        ("[!a].py", "a.py", False),
        ("?.py", "ab.py", False),
    ],
)
def test_glob_semantics(pattern, path, matches):
    assert bool(glob_to_regex(pattern).match(path)) is matches


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_loop_met_in_a_walk_is_a_tbp901(cli, project):
    (project / "src").mkdir()
    (project / "src" / "a.py").symlink_to("b.py")
    (project / "src" / "b.py").symlink_to("a.py")
    (project / "src" / "spin").symlink_to("spin")  # loops too, whatever its name
    run = cli("--output-format", "concise", "src")
    assert run.code == 1
    assert run.out.splitlines() == [
        "src/a.py:1:1: TBP901 Too many levels of symbolic links",
        "src/b.py:1:1: TBP901 Too many levels of symbolic links",
        "src/spin:1:1: TBP901 Too many levels of symbolic links",
        "Found 3 errors.",
    ]
    assert "No Python files found" not in run.err


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_dangling_symlink_met_in_a_walk_is_a_tbp901(cli, project):
    write(project / "src" / "ok.py", "x = 1\n")
    (project / "src" / "gone.py").symlink_to("moved.py")
    (project / "src" / "data").symlink_to("/nonexistent/dataset")  # not a source file: silent
    run = cli("--output-format", "concise", ".")
    assert run.code == 1
    assert run.out.splitlines() == [
        "src/gone.py:1:1: TBP901 No such file or directory",
        "Found 1 error.",
    ]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_an_excluded_broken_symlink_stays_silent(cli, project):
    write(project / "src" / "ok.py", "x = 1\n")
    (project / "src" / "gone.py").symlink_to("moved.py")
    assert cli("--extend-exclude", "gone.py", ".").code == 0


GITIGNORE_LINES = [
    "# a comment",
    "*.pyc",
    "__pycache__/",
    "/build",
    "docs/_build/",
    "data/**/raw",
    "!data/keep/raw",
    "logs/*.py",
    "!logs/keep.py",
    "[Tt]emp*",
    "a?c.py",
    "**/gen/*.py",
    "node_modules",
    "*.egg-info/",
    "\\#literal.py",
    "spaces\\ in.py",
    "",
]
GITIGNORE_PATHS = [
    "x.py",
    "x.pyc",
    "pkg/__pycache__",
    "build",
    "src/build",
    "docs/_build",
    "docs/_build/a.py",
    "data/a/b/raw",
    "data/keep/raw",
    "logs/a.py",
    "logs/keep.py",
    "logs/sub/a.py",
    "Temp.py",
    "temporary",
    "abc.py",
    "a/abc.py",
    "x/gen/y.py",
    "gen/y.py",
    "x/gen/z/y.py",
    "node_modules",
    "a/node_modules/b.py",
    "tbptt.egg-info",
    "#literal.py",
    "spaces in.py",
    "./x.pyc",
]


def test_the_gitignore_prefilter_decides_as_the_patterns_do(tmp_path):
    (tmp_path / ".gitignore").write_text("\n".join(GITIGNORE_LINES), encoding="utf-8")
    ignore = GitIgnore.load(tmp_path)
    assert ignore is not None and ignore.any_pattern is not None
    plain = GitIgnore(ignore.base, ignore.spec, ignore.base_text)  # asks the spec alone
    decisions = []
    for relative in GITIGNORE_PATHS:
        for is_dir in (False, True):
            absolute = f"{ignore.base_text}{relative}"
            fast, slow = (
                ignore.decision_text(absolute, is_dir),
                plain.decision_text(absolute, is_dir),
            )
            assert fast == slow, (relative, is_dir)
            decisions.append(slow)
    # Every kind of answer is exercised: ignored, re-included, and no pattern matched.
    assert {True, False, None} <= set(decisions)
