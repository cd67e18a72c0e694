"""The flake8 plugin, run through the real `flake8` (from the test extra) in a subprocess.

The plugin is found through the `flake8.extension` entry point of the installed package, so
these tests fail when the package was installed before the entry point existed
(`pip install -e '.[test]'` again fixes that).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
TBP001_FIXTURE = "bug_tbp001_state_not_detached.py"
# The line of TBP001_FIXTURE that holds its TBP001 finding, marked `# expect: TBP001`.
EXPECT_MARKER = "# expect: TBP001"

# `path:line:col: CODE message`, as both flake8 and `tbptt-lint --output-format concise` print.
FINDING = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>TBP\d{3}) \S", re.M)

Finding = tuple[str, int, int, str]

# A GRU loop whose state is cut only by a helper from another package, so the linter knows it
# cuts only when `detach-functions` names it.
HELPER_CUT = """\
import torch
from mylib.utils import cut

rnn = torch.nn.GRU(4, 8)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
h = torch.zeros(1, 2, 8)
for x in torch.randn(5, 3, 2, 4):
    opt.zero_grad()
    out, h = rnn(x, cut(h))
    out.sum().backward()
    opt.step()
"""


def run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def flake8(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # --isolated: no flake8 configuration of the machine or the checkout takes part.
    return run(["-m", "flake8", "--isolated", *args], cwd, stdin)


def findings(output: str) -> list[Finding]:
    return sorted(
        (os.path.normpath(m["path"]), int(m["line"]), int(m["col"]), m["code"])
        for m in FINDING.finditer(output)
    )


def test_the_plugin_is_registered() -> None:
    result = run(["-m", "flake8", "--version"], ROOT)
    assert result.returncode == 0, result.stderr
    assert "tbptt-lint: " in result.stdout, (
        "flake8 does not list the plugin; reinstall the package (pip install -e '.[test]'):\n"
        + result.stdout
    )


@pytest.mark.parametrize(
    ("flake8_selection", "cli_selection"),
    [
        (["--select", "TBP"], []),
        # The off-by-default TBP007 is reported when named exactly, as by the CLI.
        (["--select", "TBP", "--extend-select", "TBP007"], ["--extend-select", "TBP007"]),
        (["--select", "TBP007"], ["--select", "TBP007"]),
    ],
    ids=["default", "extend-select-TBP007", "select-TBP007"],
)
def test_same_positions_and_codes_as_the_cli(
    flake8_selection: list[str], cli_selection: list[str]
) -> None:
    paths = sorted(f"fixtures/{path.name}" for path in FIXTURES.glob("*.py"))
    assert any(path.endswith(TBP001_FIXTURE) for path in paths)
    assert any(Path(path).name.startswith("ok_") for path in paths)

    by_flake8 = flake8(*flake8_selection, *paths, cwd=ROOT)
    by_cli = run(
        ["-m", "tbptt_lint", "--isolated", "--output-format", "concise", *cli_selection, *paths],
        ROOT,
    )

    assert by_cli.returncode == 1, by_cli.stdout + by_cli.stderr
    assert by_flake8.returncode == 1, by_flake8.stdout + by_flake8.stderr
    expected = findings(by_cli.stdout)
    assert expected, by_cli.stdout
    assert findings(by_flake8.stdout) == expected
    # Every line flake8 printed is a finding: nothing else (no E/W/F codes) slipped in.
    assert len(by_flake8.stdout.splitlines()) == len(expected), by_flake8.stdout


def test_tbp001_fixture_position_and_clean_fixture() -> None:
    bug = f"fixtures/{TBP001_FIXTURE}"
    clean = "fixtures/ok_repackage_hidden.py"
    marked = next(
        number
        for number, line in enumerate((ROOT / bug).read_text().splitlines(), start=1)
        if EXPECT_MARKER in line
    )

    result = flake8("--select", "TBP", bug, clean, cwd=ROOT)

    assert result.returncode == 1, result.stdout + result.stderr
    [(path, line, column, code)] = findings(result.stdout)
    assert (path, line, code) == (os.path.normpath(bug), marked, "TBP001")
    # `output, hidden = model(inputs, hidden)`: the CLI points at the carried `hidden`, 1-based.
    source_line = (ROOT / bug).read_text().splitlines()[marked - 1]
    assert source_line[column - 1 :].startswith("hidden)")
    assert result.stdout.startswith(f"{bug}:{marked}:{column}: TBP001 ")


def _with_comment_on_finding(tmp_path: Path, comment: str) -> Path:
    source = (FIXTURES / TBP001_FIXTURE).read_text()
    assert source.count(EXPECT_MARKER) == 1
    path = tmp_path / "train.py"
    path.write_text(source.replace(EXPECT_MARKER, comment))
    return path


def test_noqa_with_the_code_suppresses_it(tmp_path: Path) -> None:
    _with_comment_on_finding(tmp_path, "# noqa: TBP001")

    by_flake8 = flake8("--select", "TBP", "train.py", cwd=tmp_path)
    by_cli = run(["-m", "tbptt_lint", "--isolated", "--output-format", "concise", "."], tmp_path)

    assert (by_flake8.returncode, by_flake8.stdout) == (0, "")
    assert by_cli.returncode == 0, by_cli.stdout


@pytest.mark.parametrize("comment", ["# noqa: E501", "# noqa: TBP003"])
def test_noqa_for_another_code_keeps_it(tmp_path: Path, comment: str) -> None:
    _with_comment_on_finding(tmp_path, comment)

    by_flake8 = flake8("--select", "TBP", "train.py", cwd=tmp_path)
    by_cli = run(["-m", "tbptt_lint", "--isolated", "--output-format", "concise", "."], tmp_path)

    assert by_flake8.returncode == 1, by_flake8.stdout + by_flake8.stderr
    assert [f[3] for f in findings(by_flake8.stdout)] == ["TBP001"]
    assert findings(by_flake8.stdout) == findings(by_cli.stdout)


def test_flake8_ignore_and_per_file_ignores_apply(tmp_path: Path) -> None:
    _with_comment_on_finding(tmp_path, "")

    assert flake8("--select", "TBP", "train.py", cwd=tmp_path).returncode == 1
    ignored = flake8("--select", "TBP", "--ignore", "TBP001", "train.py", cwd=tmp_path)
    assert (ignored.returncode, ignored.stdout) == (0, "")
    per_file = flake8(
        "--select", "TBP", "--per-file-ignores", "train.py:TBP0", "train.py", cwd=tmp_path
    )
    assert (per_file.returncode, per_file.stdout) == (0, "")


def test_source_comes_from_flake8_so_stdin_works(tmp_path: Path) -> None:
    source = (FIXTURES / TBP001_FIXTURE).read_text()
    # The display name does not exist on disk: the plugin must not read the file itself.
    result = flake8(
        "--select", "TBP", "--stdin-display-name", "nowhere/train.py", "-",
        cwd=tmp_path,
        stdin=source,
    )  # fmt: skip

    assert result.returncode == 1, result.stdout + result.stderr
    assert [(f[0], f[3]) for f in findings(result.stdout)] == [
        (os.path.normpath("nowhere/train.py"), "TBP001")
    ]


def test_tool_table_analysis_options_apply(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "train.py").write_text(HELPER_CUT)

    # No configuration: `cut` is unknown, so the state it hands on counts as carried uncut.
    before = flake8("--select", "TBP", "src/train.py", cwd=project)
    assert [f[3] for f in findings(before.stdout)] == ["TBP001"], before.stdout

    # The table is found from the linted file's directory upwards, as the CLI finds it.
    (project / "pyproject.toml").write_text(
        '[tool.tbptt-lint]\ndetach-functions = ["mylib.utils.cut"]\n'
    )
    after = flake8("--select", "TBP", "project/src/train.py", cwd=tmp_path)
    assert (after.returncode, after.stdout) == (0, ""), after.stdout + after.stderr


def test_tool_table_selection_is_left_to_flake8(tmp_path: Path) -> None:
    _with_comment_on_finding(tmp_path, "")
    (tmp_path / "pyproject.toml").write_text('[tool.tbptt-lint]\nignore = ["TBP001"]\n')

    by_cli = run(["-m", "tbptt_lint", "--output-format", "concise", "train.py"], tmp_path)
    by_flake8 = flake8("--select", "TBP", "train.py", cwd=tmp_path)

    assert by_cli.returncode == 0, by_cli.stdout
    assert [f[3] for f in findings(by_flake8.stdout)] == ["TBP001"], by_flake8.stdout


def test_invalid_tool_table_fails_the_run_with_its_message(tmp_path: Path) -> None:
    _with_comment_on_finding(tmp_path, "")
    (tmp_path / "pyproject.toml").write_text("[tool.tbptt-lint]\nbogus = 1\n")

    result = flake8("--select", "TBP", "train.py", cwd=tmp_path)

    assert result.returncode != 0
    assert "unknown key 'bogus' in [tool.tbptt-lint]" in result.stdout + result.stderr


def test_importing_the_plugin_loads_neither_the_analysis_nor_torch() -> None:
    # flake8 imports every plugin on every run, whatever it lints.
    code = (
        "import sys, tbptt_lint.integrations.flake8_plugin\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'libcst', 'torch'}"
        " or m.startswith('tbptt_lint.') and m not in"
        " {'tbptt_lint.integrations', 'tbptt_lint.integrations.flake8_plugin'})\n"
        "print(heavy)\n"
    )
    result = run(["-c", code], ROOT)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr
