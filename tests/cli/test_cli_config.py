"""Configuration files: discovery, validation errors, precedence and --show-settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write

from tbptt_lint.config import CliOverrides, ConfigError, load_settings
from tbptt_lint.settings import DEFAULT_EXCLUDE

pytestmark = pytest.mark.usefixtures("fake_analysis")

FINDINGS = "bug_call()\nwarn_call()\ndata_call()\n"


def codes(run) -> list[str]:
    return [item["code"] for item in json.loads(run.out)]


def test_pyproject_config_found_from_a_subdirectory(cli, project, monkeypatch):
    write(project / "pyproject.toml", '[tool.tbptt-lint]\nselect = ["TBP004"]\n')
    write(project / "src" / "deep" / "a.py", FINDINGS)
    monkeypatch.chdir(project / "src" / "deep")
    run = cli("--output-format", "json", "a.py")
    assert codes(run) == ["TBP004"]


def test_pyproject_without_our_table_is_skipped(cli, project, monkeypatch):
    write(project / "pyproject.toml", '[tool.tbptt-lint]\nignore = ["TBP001"]\n')
    write(project / "sub" / "pyproject.toml", "[project]\nname = 'x'\n")
    write(project / "sub" / "a.py", FINDINGS)
    monkeypatch.chdir(project / "sub")
    assert codes(cli("--output-format", "json", "a.py")) == ["TBP004", "TBP008"]


def test_dedicated_file_wins_over_pyproject_in_the_same_directory(cli, project):
    write(project / "pyproject.toml", '[tool.tbptt-lint]\nselect = ["TBP004"]\n')
    write(project / "tbptt-lint.toml", 'select = ["TBP008"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--output-format", "json", "a.py")) == ["TBP008"]


def test_nearer_config_wins(cli, project, monkeypatch):
    write(project / "tbptt-lint.toml", 'select = ["TBP008"]\n')
    write(project / "sub" / "pyproject.toml", '[tool.tbptt-lint]\nselect = ["TBP001"]\n')
    write(project / "sub" / "a.py", FINDINGS)
    monkeypatch.chdir(project / "sub")
    assert codes(cli("--output-format", "json", "a.py")) == ["TBP001"]


def test_isolated_ignores_config(cli, project):
    write(project / "tbptt-lint.toml", 'select = ["TBP008"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--isolated", "--output-format", "json", "a.py")) == [
        "TBP001",
        "TBP004",
        "TBP008",
    ]


def test_explicit_config_path(cli, project):
    write(project / "configs" / "strict.toml", 'ignore = ["TBP00"]\n')
    write(project / "tbptt-lint.toml", 'select = ["TBP008"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--config", "configs/strict.toml", "--output-format", "json", "a.py")) == []
    run = cli("--config", "configs/none.toml", "a.py")
    assert run.code == 2
    assert "none.toml" in run.err and "not found" in run.err


def test_cli_select_replaces_config_selection(cli, project):
    write(project / "tbptt-lint.toml", 'select = ["TBP004"]\nignore = ["TBP001"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--select", "TBP001", "--output-format", "json", "a.py")) == ["TBP001"]


def test_cli_ignore_adds_to_config_ignore(cli, project):
    write(project / "tbptt-lint.toml", 'ignore = ["TBP001"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--ignore", "TBP004", "--output-format", "json", "a.py")) == ["TBP008"]


def test_cli_extend_select_reenables_a_code_the_config_ignores(cli, project):
    write(project / "tbptt-lint.toml", 'ignore = ["TBP00"]\n')
    write(project / "a.py", FINDINGS)
    assert codes(cli("--extend-select", "TBP004", "--output-format", "json", "a.py")) == ["TBP004"]


def test_unknown_key_is_an_error_naming_key_file_and_line(cli, project):
    write(
        project / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.tbptt-lint]\nselect = []\nselcet = ["TBP001"]\n',
    )
    write(project / "a.py", FINDINGS)
    run = cli("a.py")
    assert run.code == 2
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert f"{project / 'pyproject.toml'}:6: unknown key 'selcet' in [tool.tbptt-lint]" in run.err


def test_unknown_key_in_dedicated_file(cli, project):
    write(project / "tbptt-lint.toml", 'select = ["TBP001"]\n[per-file-ignore]\n"a.py" = []\n')
    run = cli()
    assert run.code == 2
    assert f"{project / 'tbptt-lint.toml'}:2: unknown key 'per-file-ignore'" in run.err


def test_broken_toml_reports_path_line_and_column(cli, project):
    write(project / "tbptt-lint.toml", 'select = ["TBP001"\nignore = 3\n')
    run = cli()
    assert run.code == 2
    assert len(run.err.splitlines()) == 1
    assert run.err.startswith(f"tbptt-lint: error: {project / 'tbptt-lint.toml'}:2:1: invalid TOML")
    assert "Traceback" not in run.err


def test_broken_pyproject_with_our_table_is_reported(cli, project):
    write(project / "pyproject.toml", "[tool.tbptt-lint]\nselect = [\n")
    run = cli()
    assert run.code == 2
    assert "pyproject.toml:" in run.err and "invalid TOML" in run.err


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('select = "TBP001"', "'select' must be a list of strings, got a string"),
        ("ignore = [1]", "'ignore' must be a list of strings, got a list containing int"),
        ("exclude = true", "'exclude' must be a list of strings, got a boolean"),
        ('per-file-ignores = ["a.py"]', "'per-file-ignores' must be a table"),
        ('[per-file-ignores]\n"a.py" = "TBP001"', "'per-file-ignores' entry 'a.py' must be a list"),
    ],
)
def test_wrong_types_are_errors(cli, project, body, expected):
    write(project / "tbptt-lint.toml", body + "\n")
    run = cli()
    assert run.code == 2
    assert expected in run.err
    assert str(project / "tbptt-lint.toml") in run.err


@pytest.mark.parametrize(
    "body",
    ['select = ["TBP999"]', 'extend-select = ["XYZ"]', '[per-file-ignores]\n"a.py" = ["NOPE1"]'],
)
def test_unknown_rule_codes_in_config_are_errors(cli, project, body):
    write(project / "tbptt-lint.toml", body + "\n")
    run = cli()
    assert run.code == 2
    assert "unknown rule code or prefix" in run.err


def test_per_file_ignores_relative_to_the_config_directory(cli, project, monkeypatch):
    write(
        project / "pyproject.toml",
        '[tool.tbptt-lint.per-file-ignores]\n"tests/*.py" = ["TBP001"]\n"conftest.py" = ["TBP0"]\n',
    )
    write(project / "tests" / "test_a.py", FINDINGS)
    write(project / "src" / "tests" / "b.py", FINDINGS)
    write(project / "src" / "conftest.py", FINDINGS)
    monkeypatch.chdir(project / "src")
    run = cli("--output-format", "json", str(project))
    found = sorted(
        (Path(i["filename"]).relative_to(project).as_posix(), i["code"])
        for i in json.loads(run.out)
    )
    assert found == [
        ("src/tests/b.py", "TBP001"),
        ("src/tests/b.py", "TBP004"),
        ("src/tests/b.py", "TBP008"),
        ("tests/test_a.py", "TBP004"),
        ("tests/test_a.py", "TBP008"),
    ]


def test_show_settings_prints_resolved_settings(cli, project):
    write(
        project / "tbptt-lint.toml",
        'ignore = ["TBP008"]\ndetach-functions = ["mylib.cut"]\n'
        '[per-file-ignores]\n"t/*" = ["TBP001"]\n',
    )
    run = cli("--show-settings", "--extend-select", "TBP007")
    assert run.code == 0
    lines = run.out.splitlines()
    assert f"config-path = {project / 'tbptt-lint.toml'}" in lines
    assert f"project-root = {project}" in lines
    assert 'ignore = ["TBP008"]' in lines
    assert 'extend-select = ["TBP007"]' in lines
    assert 'detach-functions = ["mylib.cut"]' in lines
    assert 'per-file-ignores = {"t/*" = ["TBP001"]}' in lines
    enabled = next(line for line in lines if line.startswith("enabled-rules = "))
    assert '"TBP007"' in enabled and '"TBP008"' not in enabled
    assert all(" = " in line for line in lines)


def test_load_settings_reads_every_key(project):
    write(
        project / "tbptt-lint.toml",
        """\
select = ["TBP0"]
ignore = ["tbp002"]
extend-select = ["TBP007"]
exclude = ["legacy"]
extend-exclude = ["gen/*.py"]
detach-functions = ["mylib.utils.cut"]
recurrent-modules = ["mylib.nn.SRU"]
[per-file-ignores]
"tests/*" = ["TBP001"]
""",
    )
    settings = load_settings()
    assert settings.select == ("TBP0",)
    assert settings.ignore == ("TBP002",)
    assert settings.extend_select == ("TBP007",)
    assert settings.exclude == ("legacy",)
    assert settings.extend_exclude == ("gen/*.py",)
    assert settings.detach_functions == ("mylib.utils.cut",)
    assert settings.recurrent_modules == ("mylib.nn.SRU",)
    assert settings.per_file_ignores == (("tests/*", ("TBP001",)),)
    assert settings.config_path == project / "tbptt-lint.toml"
    assert settings.project_root == project


def test_load_settings_defaults_without_config(project):
    settings = load_settings(overrides=CliOverrides(select=("tbp001",)))
    assert settings.config_path is None
    assert settings.exclude == DEFAULT_EXCLUDE
    assert settings.select == ("TBP001",)
    with pytest.raises(ConfigError, match="'XYZ' in --ignore"):
        load_settings(overrides=CliOverrides(ignore=("XYZ",)))
