"""The integrations live in `tbptt_lint.integrations`; every old import path and every entry
point still works, and the pytest plugin registers each part only in the runs that use it."""

from __future__ import annotations

import importlib
import importlib.metadata
import textwrap

import pytest

pytest_plugins = ["pytester"]

MOVED = [
    ("tbptt_lint.pytest_plugin", "tbptt_lint.integrations.pytest_plugin"),
    ("tbptt_lint.pytest_lint", "tbptt_lint.integrations.pytest_lint"),
    ("tbptt_lint.flake8_plugin", "tbptt_lint.integrations.flake8_plugin"),
]


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_an_old_module_name_is_the_new_module(old: str, new: str):
    assert importlib.import_module(old) is importlib.import_module(new)


def test_the_tracer_and_lightning_parts_keep_their_names():
    pytest.importorskip("torch")
    import tbptt_lint.integrations.pytest_trace
    import tbptt_lint.pytest_trace

    assert tbptt_lint.pytest_trace is tbptt_lint.integrations.pytest_trace
    pytest.importorskip("lightning")
    from tbptt_lint.integrations.lightning import TBPTTCheck
    from tbptt_lint.lightning import TBPTTCheck as OldTBPTTCheck

    assert OldTBPTTCheck is TBPTTCheck


def test_the_server_keeps_its_names():
    pytest.importorskip("pygls")
    from tbptt_lint.integrations.server import run_server_command
    from tbptt_lint.server import run_server_command as old_run

    assert old_run is run_server_command
    for name in ("lsp", "workspace", "convert", "worker"):
        old = importlib.import_module(f"tbptt_lint.server.{name}")
        assert old is importlib.import_module(f"tbptt_lint.integrations.server.{name}")


def test_replacing_a_function_through_an_old_name_reaches_the_server(monkeypatch):
    # The server's crash tests do this through `tbptt_lint.server.workspace`.
    import tbptt_lint.integrations.server.workspace as workspace
    import tbptt_lint.server.workspace as old

    monkeypatch.setattr(old, "check_source", lambda *args: [])
    assert workspace.check_source(None) == []


def test_the_pytest_plugin_still_offers_the_names_it_had():
    from tbptt_lint.integrations import pytest_fixture, pytest_lint, pytest_rule_pages
    from tbptt_lint.pytest_plugin import (
        MARKER,
        RuleExampleItem,
        RulePageFile,
        TbpttFixture,
        TbpttLintFile,
        TbpttLintItem,
        _is_rule_page,
        _read_marker,
    )

    assert TbpttFixture is pytest_fixture.TbpttFixture and MARKER == "tbptt"
    assert _read_marker is pytest_fixture._read_marker
    assert (TbpttLintFile, TbpttLintItem) == (pytest_lint.TbpttLintFile, pytest_lint.TbpttLintItem)
    assert RulePageFile is pytest_rule_pages.RulePageFile
    assert RuleExampleItem is pytest_rule_pages.RuleExampleItem
    assert _is_rule_page is pytest_rule_pages._is_rule_page


def entry_point(group: str, name: str) -> importlib.metadata.EntryPoint:
    (found,) = [e for e in importlib.metadata.entry_points(group=group) if e.name == name]
    return found


def test_entry_points_name_the_new_modules():
    pytest_entry = entry_point("pytest11", "tbptt_lint")
    assert pytest_entry.value == "tbptt_lint.integrations.pytest_plugin"
    assert pytest_entry.load() is importlib.import_module("tbptt_lint.pytest_plugin")
    flake8_entry = entry_point("flake8.extension", "TBP")
    assert flake8_entry.value == "tbptt_lint.integrations.flake8_plugin:TbpttLintChecker"
    from tbptt_lint.flake8_plugin import TbpttLintChecker

    assert flake8_entry.load() is TbpttLintChecker


PARTS_TEST = """
import pytest

def test_parts(request, tbptt):
    manager = request.config.pluginmanager
    registered = sorted(
        name for name in ("tbptt_lint.fixture", "tbptt_lint.lint", "tbptt_lint.rule_pages")
        if manager.has_plugin(name)
    )
    print("PARTS", registered)
"""


def run_parts(pytester: pytest.Pytester, *args: str) -> str:
    pytester.makepyfile(test_parts=PARTS_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:asyncio", "-s", "-q", *args)
    (line,) = [line for line in result.outlines if "PARTS" in line]
    return line[line.index("PARTS") :]


def test_a_plain_run_registers_the_fixture_alone(pytester: pytest.Pytester):
    assert run_parts(pytester) == "PARTS ['tbptt_lint.fixture']"


def test_lint_items_are_registered_under_tbptt_lint(pytester: pytest.Pytester):
    line = run_parts(pytester, "--tbptt-lint", "-k", "test_parts")
    assert line == "PARTS ['tbptt_lint.fixture', 'tbptt_lint.lint']"


def test_rule_page_items_are_registered_where_pages_are_configured(pytester: pytest.Pytester):
    pytester.makeini(
        textwrap.dedent(
            """
            [pytest]
            tbptt_rule_pages = rules/*.md
            """
        )
    )
    assert run_parts(pytester) == "PARTS ['tbptt_lint.fixture', 'tbptt_lint.rule_pages']"
    assert run_parts(pytester, "-p", "no:tbptt_lint.rule_pages") == "PARTS ['tbptt_lint.fixture']"
