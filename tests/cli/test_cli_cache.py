"""The results cache: same results with and without it, reuse of unchanged files, invalidation
by edits, configuration and helper summaries, and no damage from a broken or interrupted write."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from cli_helpers import write

from tbptt_lint import cache as cache_module
from tbptt_lint import engine

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def findings(run) -> list[tuple[str, int, str]]:
    return sorted(
        (Path(item["filename"]).name, item["location"]["row"], item["code"])
        for item in json.loads(run.out)
    )


@pytest.fixture
def fixture_copy(project: Path) -> Path:
    for path in FIXTURES.glob("*.py"):
        shutil.copy(path, project / path.name)
    return project


@pytest.fixture
def analysis_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files the analysis reads, phase by phase."""
    calls: list[str] = []
    real_summarize, real_check = engine.summarize_source, engine.check_source

    def summarize(source, module_name):
        calls.append(f"summarize {module_name}")
        return real_summarize(source, module_name)

    def check(source, path, *args, **kwargs):
        calls.append(f"check {Path(path).stem}")
        return real_check(source, path, *args, **kwargs)

    monkeypatch.setattr(engine, "summarize_source", summarize)
    monkeypatch.setattr(engine, "check_source", check)
    return calls


def test_results_are_the_same_with_and_without_the_cache(cli, fixture_copy):
    uncached = findings(cli("--no-cache", "--exit-zero", "--output-format", "json", "."))
    cold = findings(cli("--exit-zero", "--output-format", "json", "."))
    warm = findings(cli("--exit-zero", "--output-format", "json", "."))
    parallel = findings(cli("--exit-zero", "--jobs", "2", "--output-format", "json", "."))
    assert len(uncached) >= 15
    assert uncached == cold == warm == parallel


def test_a_warm_run_analyses_nothing(cli, fixture_copy, analysis_calls):
    cli("--jobs", "1", "--exit-zero", ".")
    assert analysis_calls
    analysis_calls.clear()
    run = cli("--jobs", "1", "--output-format", "json", ".")
    assert analysis_calls == []
    assert run.code == 1 and len(findings(run)) >= 15


def test_an_edited_file_is_analysed_again(cli, fixture_copy, analysis_calls):
    cli("--jobs", "1", "--exit-zero", ".")
    fixed = fixture_copy / "bug_tbp001_state_not_detached.py"
    text = fixed.read_text(encoding="utf-8")
    fixed.write_text(
        text.replace(
            "output, hidden = model(inputs, hidden)  # expect: TBP001",
            "hidden = tuple(h.detach() for h in hidden)\n"
            "        output, hidden = model(inputs, hidden)",
        ),
        encoding="utf-8",
    )
    analysis_calls.clear()
    run = cli("--jobs", "1", "--output-format", "json", ".")
    assert analysis_calls == [
        "summarize bug_tbp001_state_not_detached",
        "check bug_tbp001_state_not_detached",
    ]
    assert "bug_tbp001_state_not_detached.py" not in {name for name, _, _ in findings(run)}


def test_a_changed_configuration_does_not_reuse_results(cli, fixture_copy):
    cli("--exit-zero", ".")
    write(fixture_copy / "pyproject.toml", '[tool.tbptt-lint]\nselect = ["TBP001"]\n')
    assert {code for _, _, code in findings(cli("--output-format", "json", "."))} == {"TBP001"}


def test_a_helper_changed_in_another_file_invalidates_its_callers(cli, project):
    helper = "def cut(h):\n    return h.detach()\n"
    loop = (
        "from helpers import cut\n\nhidden = None\nfor x in batches:\n"
        "    hidden = cut(hidden)\n    out, hidden = model(x, hidden)\n"
        "    out.sum().backward()\n"
    )
    write(project / "helpers.py", helper)
    write(project / "train.py", loop)
    assert cli("--output-format", "json", ".").code == 0
    write(project / "helpers.py", "def cut(h):\n    return h\n")
    assert findings(cli("--output-format", "json", ".")) == [("train.py", 6, "TBP001")]


def test_a_damaged_cache_is_ignored(cli, fixture_copy):
    expected = findings(cli("--exit-zero", "--output-format", "json", "."))
    [cache_file] = (fixture_copy / ".tbptt_lint_cache").glob("*.pickle")
    cache_file.write_bytes(b"\x80\x04 not a pickle")
    assert findings(cli("--exit-zero", "--output-format", "json", ".")) == expected


def test_an_interrupted_write_keeps_the_previous_cache(cli, fixture_copy, monkeypatch):
    cli("--exit-zero", ".")
    [cache_file] = (fixture_copy / ".tbptt_lint_cache").glob("*.pickle")
    before = cache_file.read_bytes()
    (fixture_copy / "new_file.py").write_text("loss.backward()\n", encoding="utf-8")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.pickle, "dump", killed)
    interrupted = cli("--exit-zero", ".")
    assert interrupted.code == 130  # the CLI turns Ctrl-C into an exit code, not a traceback
    assert cache_file.read_bytes() == before
    assert not list(cache_file.parent.glob("*.tmp"))
    assert isinstance(pickle.loads(before), dict)


def test_no_cache_writes_nothing_and_cache_dir_moves_it(cli, fixture_copy, tmp_path):
    cli("--no-cache", "--exit-zero", ".")
    assert not (fixture_copy / ".tbptt_lint_cache").exists()
    elsewhere = tmp_path / "elsewhere"
    cli("--cache-dir", str(elsewhere), "--exit-zero", ".")
    assert list(elsewhere.glob("*.pickle"))
    assert not (fixture_copy / ".tbptt_lint_cache").exists()


def test_files_linted_one_at_a_time_stay_warm(cli, fixture_copy, analysis_calls):
    # pre-commit and editors lint a few files per run: a run of other files must not evict them.
    big, other = "bug_tbp001_state_not_detached.py", "bug_tbp003_detach_result_discarded.py"
    first = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", big))
    cli("--jobs", "1", "--exit-zero", other)
    analysis_calls.clear()
    again = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", big))
    assert analysis_calls == []
    assert again == first and first


def test_the_least_recently_used_files_leave_a_full_cache(
    cli, fixture_copy, analysis_calls, monkeypatch
):
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 2)
    # Outside a repository, a run that names one file reads that file alone (no project context).
    (fixture_copy / ".git").rmdir()
    names = sorted(path.name for path in fixture_copy.glob("bug_*.py"))[:3]
    for name in names:
        cli("--jobs", "1", "--exit-zero", name)
    entries = pickle.loads(next((fixture_copy / ".tbptt_lint_cache").glob("*.pickle")).read_bytes())
    assert sorted(Path(path).name for path in entries) == names[1:]
    analysis_calls.clear()
    cli("--jobs", "1", "--exit-zero", names[2])  # the newest is still there
    assert analysis_calls == []
    cli("--jobs", "1", "--exit-zero", names[0])  # the oldest was dropped: read again
    assert analysis_calls == [f"summarize {Path(names[0]).stem}", f"check {Path(names[0]).stem}"]


# The warm record: the findings of the last run, reused while it reads the same files unchanged.


def test_a_warm_run_takes_its_findings_without_loading_the_summaries(
    cli, fixture_copy, monkeypatch
):
    cold = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    loads: list[Path] = []
    real_load = cache_module.LintCache._load

    def counted(self):
        loads.append(self.path)
        return real_load(self)

    monkeypatch.setattr(cache_module.LintCache, "_load", counted)
    warm = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    assert warm == cold and len(cold) >= 15
    assert loads == []
    # A file added to the tree is a different run: the summaries are loaded and the file read.
    shutil.copy(fixture_copy / "bug_tbp001_state_not_detached.py", fixture_copy / "copy.py")
    added = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    assert loads
    assert {name for name, _, _ in added} - {name for name, _, _ in cold} == {"copy.py"}


def test_a_deleted_or_edited_file_misses_the_warm_record(cli, fixture_copy, analysis_calls):
    cold = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    gone = "bug_tbp001_state_not_detached.py"
    assert gone in {name for name, _, _ in cold}
    (fixture_copy / gone).unlink()
    after = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    assert after == [item for item in cold if item[0] != gone]
    edited = fixture_copy / "bug_tbp003_detach_result_discarded.py"
    edited.write_text("x = 1\n", encoding="utf-8")
    analysis_calls.clear()
    again = findings(cli("--jobs", "1", "--exit-zero", "--output-format", "json", "."))
    # Only the edited file is read again (its helper facts changed, so the checks run again).
    summarized = [call for call in analysis_calls if call.startswith("summarize")]
    assert summarized == ["summarize bug_tbp003_detach_result_discarded"]
    assert again == [item for item in after if item[0] != edited.name]


def test_a_run_of_other_files_does_not_take_the_warm_record(cli, fixture_copy):
    cli("--exit-zero", ".")
    one = "bug_tbp001_state_not_detached.py"
    alone = findings(cli("--exit-zero", "--output-format", "json", one))
    assert alone and {name for name, _, _ in alone} == {one}


def test_a_new_version_does_not_take_the_warm_record(
    cli, fixture_copy, analysis_calls, monkeypatch
):
    cli("--jobs", "1", "--exit-zero", ".")
    analysis_calls.clear()
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    run = cli("--jobs", "1", "--exit-zero", "--output-format", "json", ".")
    assert analysis_calls and len(findings(run)) >= 15


def test_fixing_after_a_warm_run_still_fixes(cli, fixture_copy):
    expected = cli("--no-cache", "--diff", ".")
    assert expected.out
    cli("--exit-zero", ".")
    cli("--exit-zero", ".")
    assert cli("--diff", ".").out == expected.out


def test_a_damaged_warm_record_is_ignored(cli, fixture_copy):
    expected = findings(cli("--exit-zero", "--output-format", "json", "."))
    [record] = (fixture_copy / ".tbptt_lint_cache").glob("*.warm")
    record.write_bytes(b"\x80\x04 not a pickle")
    assert findings(cli("--exit-zero", "--output-format", "json", ".")) == expected
    record.write_bytes(pickle.dumps(("not the token", [], [])))
    assert findings(cli("--exit-zero", "--output-format", "json", ".")) == expected


WARM_IMPORTS = """
import sys
from tbptt_lint.cli import main
main(["--jobs", "1", "--exit-zero", "--output-format", "concise", "."])
print(sorted(name for name in sys.modules if name.split(".")[0] == "libcst"))
"""


def test_a_warm_run_imports_no_libcst(fixture_copy):
    import subprocess
    import sys

    def run() -> str:
        command = [sys.executable, "-c", WARM_IMPORTS]
        done = subprocess.run(command, cwd=fixture_copy, capture_output=True, text=True, check=True)
        return done.stdout.splitlines()[-1]

    assert run() != "[]"  # a cold run parses
    assert run() == "[]"
