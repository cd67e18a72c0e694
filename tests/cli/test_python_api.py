"""The Python API the README documents: `lint_source` and `lint_paths` from `tbptt_lint`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tbptt_lint

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Python API\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_runs_and_finds_the_bug(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    source = readme_example().split('source = """', 1)[1].split('"""', 1)[0]
    (tmp_path / "train.py").write_text(source, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("train.py:8:25: TBP001 ")
    assert lines[-1] == "checked 1 file(s), found 1"


def test_the_api_is_exported_lazily() -> None:
    from tbptt_lint.engine import LintResult, lint_paths, lint_source

    assert (tbptt_lint.lint_paths, tbptt_lint.lint_source) == (lint_paths, lint_source)
    assert tbptt_lint.LintResult is LintResult
    assert {"lint_paths", "lint_source", "Settings", "Diagnostic"} <= set(tbptt_lint.__all__)
    with pytest.raises(AttributeError):
        _ = tbptt_lint.no_such_name  # type: ignore[attr-defined]


def test_importing_the_package_loads_neither_the_engine_nor_torch() -> None:
    program = (
        "import sys, tbptt_lint\n"
        "print(sorted(m for m in ('tbptt_lint.engine', 'torch') if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
