"""The pre-commit hook, run by the real `pre-commit` (from the test extra) on temporary repos.

pre-commit installs a hook repository from a git commit, and `try-repo` on a checkout with
uncommitted changes takes only the files git already tracks. So the tests first snapshot this
checkout as it is on disk (tracked and untracked files git does not ignore, which is what a
commit of the working tree would hold) into a throwaway repository with one commit, and point
pre-commit at that.

pre-commit builds the hook's virtualenv with pip, from whatever index pip is configured to use;
when that fails, these tests fail. The build happens once per session: `PRE_COMMIT_HOME` is a
session-scoped temporary directory shared by the tests that use a `.pre-commit-config.yaml`
(`try-repo` always builds into a fresh store of its own).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
BUG_FIXTURE = FIXTURES / "bug_tbp001_state_not_detached.py"
CLEAN_FIXTURE = FIXTURES / "ok_repackage_hidden.py"
# The line of BUG_FIXTURE that holds its TBP001 finding.
BUG_LINE = next(
    number
    for number, line in enumerate(BUG_FIXTURE.read_text().splitlines(), start=1)
    if "# expect: TBP001" in line
)
HOOK_ID = "tbptt-lint"
# Generous: the first call builds the hook's environment with pip.
TIMEOUT = 300
GIT_IDENTITY = ("-c", "user.name=tbptt-lint tests", "-c", "user.email=tests@example.invalid")


def _environment(pre_commit_home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # A test run started from inside a git hook must not steer these repositories.
        if not key.startswith("GIT_") and not key.startswith("PRE_COMMIT")
    }
    env["PRE_COMMIT_HOME"] = str(pre_commit_home)
    # No user or system git configuration (signing, hooks paths, templates) takes part.
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return env


def _run(
    args: list[str], cwd: Path, env: dict[str, str], check: bool = False
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def _git(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(["git", *GIT_IDENTITY, *args], cwd, env, check=True)


def _pre_commit(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "pre_commit", *args], cwd, env)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None:
        pytest.fail("git is needed to run pre-commit")
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "--version"], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail("pre-commit is part of the test extra: pip install -e '.[test]'")
    return tmp_path_factory.mktemp("pre-commit")


@pytest.fixture(scope="session")
def env(session_dir: Path) -> dict[str, str]:
    return _environment(session_dir / "home")


@pytest.fixture(scope="session")
def hook_repo(session_dir: Path, env: dict[str, str]) -> tuple[Path, str]:
    """This checkout's working tree, committed into a repository of its own: (path, commit)."""
    listed = _git(
        "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT, env=env
    ).stdout
    snapshot = session_dir / "hook-repo"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    assert (snapshot / ".pre-commit-hooks.yaml").is_file()
    _git("init", "-q", cwd=snapshot, env=env)
    _git("add", "-A", cwd=snapshot, env=env)
    _git("commit", "-q", "--no-verify", "-m", "snapshot", cwd=snapshot, env=env)
    commit = _git("rev-parse", "HEAD", cwd=snapshot, env=env).stdout.strip()
    return snapshot, commit


@pytest.fixture
def project(tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]) -> Iterator[Path]:
    """A fresh repository whose pre-commit hook runs tbptt-lint, installed as a user would."""
    repo_path, commit = hook_repo
    (tmp_path / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"-   repo: {repo_path.as_posix()}\n"
        f"    rev: {commit}\n"
        "    hooks:\n"
        f"    -   id: {HOOK_ID}\n"
    )
    _git("init", "-q", cwd=tmp_path, env=env)
    installed = _pre_commit("install", cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _git("add", ".pre-commit-config.yaml", cwd=tmp_path, env=env)
    # The first commit builds the hook's environment (once per session); no Python file yet.
    first = _run(["git", *GIT_IDENTITY, "commit", "-m", "config"], tmp_path, env)
    assert first.returncode == 0, first.stdout + first.stderr
    yield tmp_path


def _commit(project: Path, env: dict[str, str], **files: str) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (project / name).write_text(text)
    _git("add", *files, cwd=project, env=env)
    return _run(["git", *GIT_IDENTITY, "commit", "-m", "change"], project, env)


def _head(project: Path, env: dict[str, str]) -> str:
    return _git("rev-parse", "HEAD", cwd=project, env=env).stdout.strip()


def test_the_manifest_is_valid(session_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_commit_with_a_tbp001_file_is_refused(project: Path, env: dict[str, str]) -> None:
    before = _head(project, env)

    result = _commit(project, env, **{"train.py": BUG_FIXTURE.read_text()})

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"{HOOK_ID}" in output and "Failed" in output, output
    assert re.search(rf"^train\.py:{BUG_LINE}:\d+: TBP001 ", output, re.M), output
    assert _head(project, env) == before


def test_a_commit_with_a_clean_file_passes(project: Path, env: dict[str, str]) -> None:
    before = _head(project, env)

    result = _commit(project, env, **{"train.py": CLEAN_FIXTURE.read_text()})

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Passed" in output and "TBP" not in output, output
    assert _head(project, env) != before


def test_no_python_file_staged_skips_the_hook(project: Path, env: dict[str, str]) -> None:
    # A buggy file sits in the work tree but is not staged. Run with no file arguments,
    # tbptt-lint would lint `.` and find it; pre-commit must not call it at all.
    (project / "unstaged.py").write_text(BUG_FIXTURE.read_text())

    result = _commit(project, env, **{"notes.txt": "no Python here\n"})

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "(no files to check)Skipped" in output, output


def test_the_hook_environment_has_no_torch(project: Path, env: dict[str, str]) -> None:
    # The environment pre-commit built for the hook (the only one in this session's store).
    home = Path(env["PRE_COMMIT_HOME"])
    pythons = list(home.glob("repo*/py_env-*/bin/python")) + list(
        home.glob("repo*/py_env-*/Scripts/python.exe")
    )
    assert len(pythons) == 1, pythons
    probe = _run(
        [str(pythons[0]), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
        project,
        env,
    )
    assert (probe.returncode, probe.stdout.strip()) == (0, "None"), probe.stderr


def test_try_repo_runs_the_hook_on_the_given_files(
    tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    repo_path, _ = hook_repo
    (tmp_path / "bad.py").write_text(BUG_FIXTURE.read_text())
    (tmp_path / "good.py").write_text(CLEAN_FIXTURE.read_text())
    _git("init", "-q", cwd=tmp_path, env=env)
    _git("add", ".", cwd=tmp_path, env=env)

    result = _pre_commit(
        "try-repo", str(repo_path), HOOK_ID, "--files", "bad.py", "good.py",
        cwd=tmp_path, env=env,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(rf"^bad\.py:{BUG_LINE}:\d+: TBP001 ", output, re.M), output
    assert "good.py:" not in output, output


def test_the_fix_hook_fixes_the_file_and_then_passes(
    tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    repo_path, _ = hook_repo
    fixable = FIXTURES / "bug_tbp003_detach_result_discarded.py"
    (tmp_path / "train.py").write_text(fixable.read_text())
    _git("init", "-q", cwd=tmp_path, env=env)
    _git("add", ".", cwd=tmp_path, env=env)

    def fix_hook() -> subprocess.CompletedProcess[str]:
        return _pre_commit(
            "try-repo", str(repo_path), "tbptt-lint-fix", "--files", "train.py",
            cwd=tmp_path, env=env,
        )  # fmt: skip

    first = fix_hook()
    fixed = (tmp_path / "train.py").read_text()
    # pre-commit fails a hook that changed files; the fix is in the working tree.
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout + first.stderr
    assert fixed == fixable.read_text().replace(
        "        hidden.detach()  # expect", "        hidden = hidden.detach()  # expect"
    )
    assert fixed != fixable.read_text()

    _git("add", ".", cwd=tmp_path, env=env)
    second = fix_hook()
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "train.py").read_text() == fixed


def test_excluded_files_are_skipped_though_pre_commit_names_them(
    project: Path, env: dict[str, str]
) -> None:
    # pre-commit passes staged files by name; the hook's --force-exclude makes the configured
    # excludes apply to them, as ruff's hook does.
    (project / "pyproject.toml").write_text('[tool.tbptt-lint]\nextend-exclude = ["legacy"]\n')
    (project / "legacy").mkdir()
    before = _head(project, env)

    result = _commit(
        project,
        env,
        **{"pyproject.toml": (project / "pyproject.toml").read_text()},
        **{"legacy/train.py": BUG_FIXTURE.read_text()},
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "TBP001" not in output, output
    assert _head(project, env) != before
