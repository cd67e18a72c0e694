"""`--add-noqa`: a `# noqa: CODE` on every line with a finding, merged into an existing noqa
comment, never twice; exit 0 and "Added N noqa directives." on stderr, as ruff."""

from __future__ import annotations

import pytest
from cli_helpers import write

pytestmark = pytest.mark.usefixtures("fake_analysis")


def test_adds_a_directive_to_each_line_with_a_finding(cli, project):
    path = write(project / "a.py", "bug_call()\nx = 1\nwarn_call()  # keep me\n")
    run = cli("--add-noqa", "a.py")
    assert (run.code, run.out) == (0, "")
    assert run.err == "Added 2 noqa directives.\n"
    assert path.read_text() == (
        "bug_call()  # noqa: TBP001\nx = 1\nwarn_call()  # keep me  # noqa: TBP004\n"
    )
    assert cli("a.py").code == 0  # they suppress what they were added for


def test_codes_are_merged_into_an_existing_directive(cli, project):
    path = write(project / "a.py", "bug_call(); warn_call()  # noqa: E501 long line\n")
    run = cli("--add-noqa", "a.py")
    assert run.err.endswith("Added 1 noqa directive.\n")
    assert path.read_text() == "bug_call(); warn_call()  # noqa: E501, TBP001, TBP004 long line\n"


def test_a_second_run_adds_nothing(cli, project):
    path = write(project / "a.py", "bug_call()\nwarn_call()  # noqa: TBP004\n")
    cli("--add-noqa", "a.py")
    once = path.read_text()
    assert once == "bug_call()  # noqa: TBP001\nwarn_call()  # noqa: TBP004\n"
    run = cli("--add-noqa", "a.py")
    assert (run.code, run.err) == (0, "")
    assert path.read_text() == once


def test_line_endings_and_other_files_are_kept(cli, project):
    crlf = project / "crlf.py"
    crlf.write_bytes(b"x = 1\r\nbug_call()\r\n")
    clean = write(project / "clean.py", "x = 1\n")
    cli("--add-noqa", ".")
    assert crlf.read_bytes() == b"x = 1\r\nbug_call()  # noqa: TBP001\r\n"
    assert clean.read_text() == "x = 1\n"


def test_a_line_that_cannot_take_a_comment_leaves_the_file_alone(cli, project):
    text = "y = bug_call() + \\\n    1\n"
    path = write(project / "a.py", text)
    run = cli("--add-noqa", "a.py")
    assert run.code == 0
    assert path.read_text() == text
    assert "noqa directives not added" in run.err


def test_add_noqa_with_fix_is_a_usage_error(cli, project):
    write(project / "a.py", "bug_call()\n")
    run = cli("--add-noqa", "--fix", "a.py")
    assert run.code == 2
    assert "--add-noqa cannot be used with" in run.err


def test_a_reason_goes_after_the_codes(cli, project):
    # As `ruff check --add-noqa=REASON`: the reason follows the codes.
    path = write(project / "a.py", "bug_call()\nx = 1\n")
    run = cli("--add-noqa=carried on purpose", "a.py")
    assert (run.code, run.err) == (0, "Added 1 noqa directive.\n")
    assert path.read_text() == "bug_call()  # noqa: TBP001 carried on purpose\nx = 1\n"
    assert cli("a.py").code == 0


def test_a_reason_replaces_the_reason_of_a_directive_it_is_merged_into(cli, project):
    path = write(
        project / "a.py",
        "bug_call()  # noqa: E501 long line\nwarn_call()  # noqa: E501 long  # type: ignore\n",
    )
    cli("--add-noqa=known", "a.py")
    assert path.read_text() == (
        "bug_call()  # noqa: E501, TBP001 known\n"
        "warn_call()  # noqa: E501, TBP004 known  # type: ignore\n"
    )


def test_add_noqa_without_a_reason_still_takes_a_path_after_it(cli, project):
    # The reason is given only with `=`: `--add-noqa a.py` names a file, as in ruff.
    path = write(project / "a.py", "bug_call()\n")
    assert cli("--add-noqa", "a.py").code == 0
    assert path.read_text() == "bug_call()  # noqa: TBP001\n"
    other = write(project / "b.py", "bug_call()\n")
    assert cli("--add-noqa=", "b.py").code == 0  # an empty reason is none
    assert other.read_text() == "bug_call()  # noqa: TBP001\n"


def test_a_reason_on_two_lines_is_a_usage_error(cli, project):
    path = write(project / "a.py", "bug_call()\n")
    run = cli("--add-noqa=one\ntwo", "a.py")
    assert run.code == 2
    assert "cannot contain newline characters" in run.err
    assert path.read_text() == "bug_call()\n"
