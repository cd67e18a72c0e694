"""The real console script and `python -m tbptt_lint`, run as separate processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import TBP001_SNIPPET

from tbptt_lint import __version__

SCRIPT = shutil.which("tbptt-lint", path=str(Path(sys.executable).parent)) or shutil.which(
    "tbptt-lint"
)


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("TBPTT_LINT_DEBUG", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_python_m_version(tmp_path):
    result = run([sys.executable, "-m", "tbptt_lint", "--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"tbptt-lint {__version__}\n"


@pytest.mark.skipif(SCRIPT is None, reason="console script not installed")
def test_console_script_exit_codes(tmp_path):
    (tmp_path / "ok.py").write_text("x = 1\n")
    clean = run([SCRIPT, "--isolated", "ok.py"], tmp_path)
    assert (clean.returncode, clean.stdout) == (0, "All checks passed!\n")
    missing = run([SCRIPT, "--isolated", "check", "ok.py", "gone.py"], tmp_path)
    assert missing.returncode == 1
    assert "gone.py:1:1: TBP901 No such file or directory" in missing.stdout
    usage = run([SCRIPT, "--select", "NOPE"], tmp_path)
    assert usage.returncode == 2
    assert usage.stderr == "tbptt-lint: error: unknown rule code or prefix 'NOPE' in --select\n"


def test_python_m_matches_the_script_on_findings(tmp_path):
    (tmp_path / "bad.py").write_bytes(b"x = '\xff'\n")
    result = run([sys.executable, "-m", "tbptt_lint", "--isolated", "--jobs", "2", "."], tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("bad.py:1:6: TBP900 syntax error: file is not valid utf-8")
    assert result.stdout.endswith("Found 1 error.\n")


def test_linting_does_not_import_torch(tmp_path):
    # A real training loop, so that every rule runs over it.
    (tmp_path / "a.py").write_text(TBP001_SNIPPET)
    code = (
        "import sys\n"
        "from tbptt_lint.cli import main\n"
        "status = main(['--isolated', '--jobs', '1', '-q', '.'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(status)\n"
    )
    result = run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1"  # the TBP001 finding was reported
