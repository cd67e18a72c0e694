"""A run that names files (pre-commit, editors) also reads the project modules those files
import, for their helpers: it gives the named files the findings a run on the whole project
gives them, and reports nothing of the modules it read only for that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write

from tbptt_lint import engine

CUTTING_HELPER = """\
def repackage_hidden(h):
    if isinstance(h, tuple):
        return tuple(repackage_hidden(v) for v in h)
    return h.detach()
"""
PASS_THROUGH_HELPER = "def repackage_hidden(h):\n    return h\n"
# The state handed on through the helper: reported when the helper is unknown (a state
# rebound to an unknown helper's result, `hidden = f(hidden)`, is unknown and never reported).
LOOP = """\
from {module} import repackage_hidden


def train(model, batches, opt):
    hidden = None
    for x, y in batches:
        out, hidden = model(x, repackage_hidden(hidden))
        loss = (out - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""
# A loop of its own that never cuts its state: a finding wherever it is linted.
LEAKING_LOOP = """\
def leak(model, batches):
    hidden = None
    for x in batches:
        out, hidden = model(x, hidden)
        out.sum().backward()
"""


def findings(run) -> list[tuple[str, int, str]]:
    return sorted(
        (Path(item["filename"]).name, item["location"]["row"], item["code"])
        for item in json.loads(run.out)
    )


@pytest.fixture
def summarized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Module names phase 1 reads."""
    names: list[str] = []
    real = engine.summarize_source

    def summarize(source, module_name):
        names.append(module_name)
        return real(source, module_name)

    monkeypatch.setattr(engine, "summarize_source", summarize)
    return names


def lint(cli, *args: str):
    return cli("--no-cache", "--jobs", "1", "--output-format", "json", *args)


def test_a_helper_in_an_unchanged_module_is_known_to_a_run_on_one_file(cli, project):
    write(project / "utils.py", CUTTING_HELPER)
    write(project / "train.py", LOOP.format(module="utils"))
    run = lint(cli, "train.py")
    assert (run.code, findings(run)) == (0, [])


def test_a_helper_that_does_not_cut_is_still_reported_on_one_file(cli, project):
    write(project / "utils.py", PASS_THROUGH_HELPER)
    write(project / "train.py", LOOP.format(module="utils"))
    assert findings(lint(cli, "train.py")) == [("train.py", 7, "TBP001")]


def test_modules_read_for_helpers_report_nothing_of_their_own(cli, project):
    write(project / "utils.py", CUTTING_HELPER + "\n\n" + LEAKING_LOOP)
    write(project / "train.py", LOOP.format(module="utils"))
    assert findings(lint(cli, "train.py")) == []
    # The same module linted itself has its finding: it was read, not silenced.
    assert [name for name, _, _ in findings(lint(cli, "utils.py"))] == ["utils.py"]


def test_relative_imports_inside_a_package(cli, project):
    write(project / "pkg" / "__init__.py", "")
    write(project / "pkg" / "helpers.py", CUTTING_HELPER)
    write(project / "pkg" / "train.py", LOOP.format(module=".helpers"))
    assert findings(lint(cli, "pkg/train.py")) == []


def test_only_imported_modules_are_read_and_the_one_beside_the_importer_wins(
    cli, project, summarized
):
    write(project / "utils.py", CUTTING_HELPER)
    write(project / "train.py", LOOP.format(module="utils"))
    # Another script directory's `utils` (not what `train.py` imports), and a module nobody
    # imports: neither is read.
    write(project / "scripts" / "utils.py", PASS_THROUGH_HELPER)
    write(project / "unrelated.py", PASS_THROUGH_HELPER)
    assert findings(lint(cli, "train.py")) == []
    assert sorted(summarized) == ["train", "utils"]


def test_modules_imported_by_imported_modules_are_read_too(cli, project, summarized):
    # A model module that imports its layers: what the named file uses is built from both.
    write(project / "lib" / "__init__.py", "")
    write(project / "lib" / "state.py", CUTTING_HELPER)
    write(project / "lib" / "tools.py", "from lib.state import repackage_hidden\n")
    write(project / "train.py", LOOP.format(module="lib.tools"))
    lint(cli, "train.py")
    assert sorted(summarized) == ["lib", "lib.state", "lib.tools", "train"]


def test_outside_a_project_a_named_file_is_read_alone(cli, project, summarized):
    (project / ".git").rmdir()  # no repository, no configuration: no project to read
    write(project / "utils.py", CUTTING_HELPER)
    write(project / "train.py", LOOP.format(module="utils"))
    assert findings(lint(cli, "train.py")) == [("train.py", 7, "TBP001")]
    assert summarized == ["train"]


def test_a_directory_run_is_unchanged(cli, project, summarized):
    write(project / "src" / "train.py", LOOP.format(module="utils"))
    write(project / "utils.py", CUTTING_HELPER)
    # `src/` alone: utils.py is outside what was named, as before.
    assert findings(lint(cli, "src")) == [("train.py", 7, "TBP001")]
    assert summarized == ["train"]


def test_the_cache_keeps_the_modules_read_for_helpers(cli, project, summarized):
    write(project / "utils.py", CUTTING_HELPER)
    write(project / "train.py", LOOP.format(module="utils"))
    cached = ("--jobs", "1", "--output-format", "json", "train.py")
    assert findings(cli(*cached)) == []
    summarized.clear()
    assert findings(cli(*cached)) == []
    assert summarized == []
    write(project / "utils.py", PASS_THROUGH_HELPER)  # the helper changes, train.py does not
    assert findings(cli(*cached)) == [("train.py", 7, "TBP001")]
