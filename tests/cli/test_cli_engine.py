"""Reading files (encodings, I/O errors), syntax errors, and parallel runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import TBP001_SNIPPET, write

from tbptt_lint import engine
from tbptt_lint.engine import lint_paths, lint_source
from tbptt_lint.settings import Settings
from tbptt_lint.sources import SourceUnavailable, decode_source, module_name_for


def concise(cli, *args: str) -> list[str]:
    return cli("--output-format", "concise", "-q", *args).out.splitlines()


@pytest.mark.usefixtures("fake_analysis")
class TestDecoding:
    def test_non_utf8_file_is_tbp900_at_the_bad_byte(self, cli, project):
        (project / "bad.py").write_bytes(b"x = 1\ny = '\xe9t\xe9'\n")
        run = cli("--output-format", "json", "bad.py")
        assert run.code == 1
        [item] = json.loads(run.out)
        assert item["code"] == "TBP900"
        assert item["message"].startswith("syntax error: file is not valid utf-8: ")
        assert item["location"] == {"row": 2, "column": 6}

    def test_latin1_with_coding_cookie_is_decoded(self, cli, project):
        source = "# -*- coding: latin-1 -*-\nname = 'caf\xe9'\nbug_call()\n"
        (project / "l1.py").write_bytes(source.encode("latin-1"))
        assert concise(cli, "l1.py") == ["l1.py:3:1: TBP001 fake TBP001 at `bug_call()`"]

    def test_unknown_encoding_cookie_is_tbp900(self, cli, project):
        (project / "enc.py").write_bytes(b"#!/usr/bin/env python\n# coding: klingon\nx = 1\n")
        [line] = concise(cli, "enc.py")
        assert line.startswith("enc.py:2:1: TBP900 syntax error: unknown encoding")

    def test_bom_is_accepted_and_not_counted_in_columns(self, cli, project):
        (project / "bom.py").write_bytes(b"\xef\xbb\xbfbug_call()\n")
        assert concise(cli, "bom.py") == ["bom.py:1:1: TBP001 fake TBP001 at `bug_call()`"]

    def test_crlf_line_endings(self, cli, project):
        (project / "crlf.py").write_bytes(b"x = 1\r\n\r\nif x:\r\n  bug_call()\r\n")
        assert concise(cli, "crlf.py") == ["crlf.py:4:3: TBP001 fake TBP001 at `bug_call()`"]

    def test_empty_file_is_clean(self, cli, project):
        (project / "empty.py").write_bytes(b"")
        assert cli("empty.py").code == 0

    def test_decode_source_reports_line_and_character_column(self):
        with pytest.raises(SourceUnavailable) as raised:
            decode_source("a = 'é'\nb = 'ü".encode() + b"\xff'\n")
        assert (raised.value.code, raised.value.line, raised.value.column) == ("TBP900", 2, 7)


@pytest.mark.usefixtures("fake_analysis")
def test_syntax_error_is_tbp900_with_position_and_other_files_still_linted(cli, project):
    write(project / "a_broken.py", "x = 1\ndef f(:\n    pass\n")
    write(project / "b_fine.py", "bug_call()\n")
    run = cli("--output-format", "json", ".")
    assert run.code == 1
    items = json.loads(run.out)
    assert [(Path(i["filename"]).name, i["code"]) for i in items] == [
        ("a_broken.py", "TBP900"),
        ("b_fine.py", "TBP001"),
    ]
    assert items[0]["location"] == {"row": 2, "column": 7}
    assert items[0]["message"].startswith("syntax error: ")


@pytest.mark.usefixtures("fake_analysis")
def test_syntax_error_raised_by_the_summary_phase(cli, project, monkeypatch):
    from tbptt_lint.analysis import SourceSyntaxError

    def summarize(source, module_name):
        raise SourceSyntaxError("unexpected token", 3, 4)

    monkeypatch.setattr(engine, "summarize_source", summarize)
    write(project / "a.py", "bug_call()\n")
    assert concise(cli, "a.py") == ["a.py:3:4: TBP900 syntax error: unexpected token"]


@pytest.mark.usefixtures("fake_analysis")
def test_unreadable_file_is_tbp901_with_the_os_reason(cli, project, monkeypatch):
    # Running as root, chmod 000 does not stop reads, so make opening this one file fail.
    write(project / "secret.py", "bug_call()\n")
    write(project / "open.py", "bug_call()\n")
    real_open = os.open

    def deny(path, flags, *args, **kwargs):
        if str(path).endswith("secret.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(engine.os, "open", deny)
    assert concise(cli, ".") == [
        "open.py:1:1: TBP001 fake TBP001 at `bug_call()`",
        "secret.py:1:1: TBP901 Permission denied",
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_explicitly_is_tbp901_and_does_not_hang(cli, project):
    os.mkfifo(project / "pipe.py")
    assert concise(cli, "pipe.py") == ["pipe.py:1:1: TBP901 Not a regular file"]
    # ... and a directory walk skips it
    assert cli(".").code == 0


def test_module_names_follow_packages(tmp_path):
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "sub" / "__init__.py", "")
    assert module_name_for(tmp_path / "pkg" / "sub" / "mod.py") == "pkg.sub.mod"
    assert module_name_for(tmp_path / "pkg" / "sub" / "__init__.py") == "pkg.sub"
    assert module_name_for(tmp_path / "script.py") == "script"


def test_phase_one_summarises_every_file_before_phase_two(project, monkeypatch):
    # Each file calls backward, so none is skipped by the prefilter before phase 2.
    write(project / "pkg" / "__init__.py", "loss.backward()\n")
    write(project / "pkg" / "utils.py", "loss.backward()\n")
    write(project / "train.py", "loss.backward()\n")
    seen: list[list[str]] = []

    def check(source, path, settings, index=None, module_name=None):
        seen.append(sorted(index.summaries))
        return []

    monkeypatch.setattr(engine, "check_source", check)
    lint_paths(["."], Settings(project_root=project), jobs=1)
    assert seen == [["pkg", "pkg.utils", "train"]] * 3


def test_phase_two_skips_files_that_cannot_hold_a_finding(project, monkeypatch):
    write(project / "model.py", "import torch\nx = torch.zeros(3)\n")
    write(project / "train.py", "loss.backward()\n")
    checked: list[str] = []

    def check(source, path, settings, index=None, module_name=None):
        checked.append(Path(path).name)
        return []

    monkeypatch.setattr(engine, "check_source", check)
    lint_paths(["."], Settings(project_root=project), jobs=1)
    assert checked == ["train.py"]


@pytest.mark.usefixtures("fake_analysis")
def test_lint_source_applies_selection_and_noqa():
    settings = Settings(ignore=("TBP004",))
    warnings: list[str] = []
    diagnostics = lint_source(
        "warn_call()\nbug_call()  # noqa: ZZZ9\nbug_call()  # noqa\n",
        "x.py",
        settings,
        warnings=warnings,
    )
    assert [(d.code, d.line, d.severity.value) for d in diagnostics] == [("TBP001", 2, "error")]
    assert diagnostics[0].url.endswith("/rules/TBP001.md")
    assert warnings == ["x.py:2: warning: unknown rule code ZZZ9 in noqa directive"]
    [syntax] = lint_source("def f(:\n", "y.py", Settings())
    assert (syntax.code, syntax.line) == ("TBP900", 1)


def _parallel_project(project: Path) -> None:
    for index in range(6):
        write(project / f"m{index}.py", TBP001_SNIPPET)
    (project / "latin.py").write_bytes(b"# coding: latin-1\nx = '\xe9'\n")
    (project / "broken.py").write_bytes(b"x = 1\n\xff\xfe = 2\n")
    (project / "cookie.py").write_bytes(b"# coding: nope\n")
    write(project / "pkg" / "__init__.py", "")
    write(
        project / "pkg" / "noqa.py", TBP001_SNIPPET.replace("hidden)\n", "hidden)  # noqa: BAD1\n")
    )
    if hasattr(os, "mkfifo"):
        os.mkfifo(project / "pipe.py")


def test_jobs_2_gives_the_same_result_as_jobs_1(cli, project):
    # Uses the real analysis (workers cannot see an in-process fake); the TBP900/TBP901 files
    # make the comparison meaningful even while the analysis reports nothing else.
    _parallel_project(project)
    args = ["--output-format", "json", ".", "pipe.py", "missing.py"]
    one = cli("--jobs", "1", *args)
    two = cli("--jobs", "2", *args)
    assert one.code == two.code == 1
    assert one.out == two.out
    assert one.err == two.err
    codes = [item["code"] for item in json.loads(one.out)]
    assert codes.count("TBP900") == 2
    assert codes.count("TBP901") == 2


def test_lint_paths_pool_result_equals_in_process_result(project):
    _parallel_project(project)
    settings = Settings(project_root=project)
    one = lint_paths(["."], settings, jobs=1)
    two = lint_paths(["."], settings, jobs=2)
    assert one.diagnostics == two.diagnostics
    # the FIFO is not a regular file, so the walk skips it
    assert one.files_checked == two.files_checked == 11
    assert one.warnings == two.warnings
    assert one.files_with_errors == two.files_with_errors
