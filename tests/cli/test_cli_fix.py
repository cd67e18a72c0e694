"""`--fix`, `--unsafe-fixes`, `--diff`, `--fix-only`: what the fixes write, and what they never do.

The fixes run on the real analysis. Every buggy fixture with a fixable finding is fixed in a
temporary copy; the fixed file must parse, lose the finding its fix targets, keep every other
byte outside the edits, and not change when fixed again.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import shutil
from pathlib import Path

import pytest
from cli_helpers import write

from tbptt_lint import atomic, fixer, testing
from tbptt_lint.engine import lint_source
from tbptt_lint.rules import RULES_BY_CODE
from tbptt_lint.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
ALL_RULES = Settings(select=("TBP",), extend_select=("TBP007",))
SAFE_CODES = {c for c, r in RULES_BY_CODE.items() if r.fix_availability == "safe"}
UNSAFE_CODES = {c for c, r in RULES_BY_CODE.items() if r.fix_availability == "unsafe"}


def expected_codes(path: Path) -> set[str]:
    return testing.expected_codes(path.read_text(encoding="utf-8"))


FIXABLE = sorted(
    p for p in FIXTURES.glob("bug_*.py") if expected_codes(p) & (SAFE_CODES | UNSAFE_CODES)
)


def codes_in(path: Path) -> list[str]:
    return [d.code for d in lint_source(path.read_text(encoding="utf-8"), path, ALL_RULES)]


def test_the_fixable_rules_are_the_ones_the_issue_names():
    assert {"TBP003", "TBP008", "TBP014"} == SAFE_CODES
    assert {"TBP001", "TBP002", "TBP006"} == UNSAFE_CODES
    # Every fixable rule has a buggy fixture to be fixed below.
    assert {c for p in FIXABLE for c in expected_codes(p)} >= SAFE_CODES | UNSAFE_CODES


@pytest.mark.parametrize("fixture", FIXABLE, ids=[p.stem for p in FIXABLE])
def test_fixing_a_fixture_removes_its_finding_once_and_for_all(cli, project, fixture):
    target = project / fixture.name
    shutil.copy(fixture, target)
    original = target.read_text(encoding="utf-8")
    before = codes_in(target)

    run = cli("--fix", "--unsafe-fixes", "--no-cache", "--extend-select", "TBP007", str(target))

    fixed = target.read_text(encoding="utf-8")
    assert fixed != original, run.out + run.err
    ast.parse(fixed)
    after = codes_in(target)
    assert not set(after) & (SAFE_CODES | UNSAFE_CODES), after
    assert sorted(after) == sorted(c for c in before if c not in SAFE_CODES | UNSAFE_CODES)
    assert run.code == (1 if after else 0), run.out + run.err
    assert f"({len(before) - len(after)} fixed, {len(after)} remaining)" in run.out
    # Only the lines the fix is about changed: at most one line edited or one inserted.
    changes = [
        line
        for line in difflib.ndiff(original.splitlines(), fixed.splitlines())
        if line[:1] in "+-"
    ]
    assert 1 <= len(changes) <= 2, changes
    # The comment on the fixed line survives.
    assert fixed.count("# expect:") == original.count("# expect:")

    stat_before = os.stat(target)
    again = cli("--fix", "--unsafe-fixes", "--no-cache", str(target))
    assert target.read_text(encoding="utf-8") == fixed
    assert os.stat(target).st_mtime_ns == stat_before.st_mtime_ns  # not even rewritten
    assert "(0 fixed" in again.out or "All checks passed!" in again.out


@pytest.mark.parametrize("fixture", FIXABLE, ids=[p.stem for p in FIXABLE])
def test_a_fixed_fixture_measures_the_intended_horizon(project, fixture):
    pytest.importorskip("torch")
    from tbptt_lint.cli import main
    from tbptt_lint.tracer import trace
    from tbptt_lint.tracer.fixture_check import load_module

    target = project / fixture.name
    shutil.copy(fixture, target)
    assert main(["--fix", "--unsafe-fixes", "--no-cache", "-q", str(target)]) in (0, 1)
    module = load_module(target)
    with trace(None) as t:
        module.train()  # the fixtures that raised before must not raise now
    assert t.calls, "the fixed loop ran no backward"
    assert t.check(module.K1, module.K2) == [], [c.horizon for c in t.calls]
    assert max(c.horizon for c in t.calls) == module.K2


def test_safe_fixes_only_without_unsafe_fixes(cli, project):
    leaky = project / "leaky.py"
    shutil.copy(FIXTURES / "bug_tbp001_state_not_detached.py", leaky)
    discarded = project / "discarded.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", discarded)
    leaky_before = leaky.read_bytes()

    run = cli("--no-cache", "--fix", ".")

    assert leaky.read_bytes() == leaky_before
    assert "hidden = hidden.detach()  # expect: TBP003" in discarded.read_text()
    assert run.code == 1
    assert "Found 2 errors (1 fixed, 1 remaining)." in run.out
    assert "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option)." in (
        run.out
    )


def test_plain_check_marks_fixable_findings_and_writes_nothing(cli, project):
    target = project / "discarded.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", target)
    before = target.read_bytes()
    run = cli("--no-cache", str(target))
    assert target.read_bytes() == before
    assert ": TBP003 [*] " in run.out
    assert "[*] 1 fixable with the `--fix` option." in run.out


def test_diff_prints_a_unified_diff_and_writes_nothing(cli, project):
    target = project / "discarded.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", target)
    before = target.read_bytes()

    run = cli("--no-cache", "--diff", str(target))

    assert target.read_bytes() == before
    assert run.code == 1
    assert run.out.startswith("--- discarded.py\n+++ discarded.py\n@@ ")
    assert "\n-        hidden.detach()  # expect: TBP003\n" in run.out
    assert "\n+        hidden = hidden.detach()  # expect: TBP003\n" in run.out
    assert "Would fix 1 error." in run.err
    # Applying the printed diff gives what --fix writes.
    fixed = cli("--no-cache", "--fix", str(target))
    assert fixed.code == 0
    expected = "".join(difflib.restore(_ndiff_of(before.decode(), target.read_text()), 2))
    assert expected == target.read_text()


def _ndiff_of(old: str, new: str) -> list[str]:
    return list(difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)))


def test_diff_without_anything_to_fix_is_silent_and_exits_0(cli, project):
    shutil.copy(FIXTURES / "ok_repackage_hidden.py", project / "ok.py")
    shutil.copy(FIXTURES / "bug_tbp004_detach_every_step.py", project / "nofix.py")
    run = cli("--no-cache", "--diff", "--unsafe-fixes", ".")
    assert (run.code, run.out) == (0, "")


def test_fix_only_does_not_report_what_is_left(cli, project):
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", project / "a.py")
    shutil.copy(FIXTURES / "bug_tbp004_detach_every_step.py", project / "b.py")
    run = cli("--no-cache", "--fix-only", ".")
    assert run.code == 0
    assert run.out == "Fixed 1 error.\n"
    assert "hidden = hidden.detach()" in (project / "a.py").read_text()
    nonzero = cli("--no-cache", "--fix-only", "--exit-non-zero-on-fix", ".")
    assert (nonzero.code, nonzero.out) == (0, "Fixed 0 errors.\n")


def test_exit_non_zero_on_fix(cli, project):
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", project / "a.py")
    run = cli("--no-cache", "--fix", "--exit-non-zero-on-fix", ".")
    assert run.code == 1
    assert "Found 1 error (1 fixed, 0 remaining)." in run.out


def test_a_suppressed_finding_is_not_fixed(cli, project):
    source = (FIXTURES / "bug_tbp003_detach_result_discarded.py").read_text()
    source = source.replace("# expect: TBP003", "# noqa: TBP003")
    target = write(project / "a.py", source)
    run = cli("--no-cache", "--fix", str(target))
    assert (run.code, target.read_text()) == (0, source)


def test_crlf_bom_and_comments_are_kept(cli, project):
    source = (
        "# training loop\r\n"
        "import torch.nn as nn\r\n"
        "rnn = nn.GRU(8, 16)\r\n"
        "hidden = None\r\n"
        "for x, y in batches:  # one window per batch\r\n"
        "    out, hidden = rnn(x, hidden)\r\n"
        "    (out - y).pow(2).mean().backward()\r\n"
        "    hidden.detach()    # cut here\r\n"
        "    print('déjà vu')\r\n"
    )
    target = project / "crlf.py"
    target.write_bytes(b"\xef\xbb\xbf" + source.encode("utf-8"))
    run = cli("--no-cache", "--fix", str(target))
    assert run.code == 0, run.out + run.err
    expected = source.replace("    hidden.detach()    #", "    hidden = hidden.detach()    #")
    assert target.read_bytes() == b"\xef\xbb\xbf" + expected.encode("utf-8")


def test_elementwise_and_group_forms(cli, project):
    source = """\
import torch.nn as nn
cell = nn.LSTMCell(8, 16)
hidden = (h0, c0)
h, c = h0, c0
totals = []
for x, y in windows:
    for t in range(x.size(0)):
        hidden = cell(x[t], hidden)
        h, c = cell(x[t], (h, c))
    loss = (hidden[0] - y).pow(2).mean() + (h - y).pow(2).mean()
    loss.backward()
    for s in hidden:
        s.detach()
    totals.append(loss)
"""
    target = write(project / "forms.py", source)
    run = cli("--no-cache", "--fix", "--unsafe-fixes", str(target))
    fixed = target.read_text()
    assert "    hidden = tuple(s.detach() for s in hidden)\n    totals" in fixed, fixed
    assert "    loss.backward()\n    h, c = h.detach(), c.detach()\n" in fixed, fixed
    assert "    totals.append(loss.item())\n" in fixed, fixed
    assert run.code == 0, run.out + run.err


def test_a_cut_goes_after_a_backward_that_runs_every_k_steps(project):
    """In a per-step loop, the cut belongs with the backward, not at the top of the loop: the
    fixed loop keeps its k-step horizon."""
    pytest.importorskip("torch")
    from tbptt_lint.cli import main
    from tbptt_lint.tracer import trace
    from tbptt_lint.tracer.fixture_check import load_module

    source = """\
import torch
import torch.nn as nn

K1 = K2 = 5


def train():
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 4)
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.01)
    x = torch.randn(30, 2, 3)
    h = torch.zeros(2, 4)
    loss = 0.0
    for t in range(30):
        h = cell(x[t], h)
        loss = loss + h.pow(2).mean()
        if (t + 1) % K1 == 0:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss = 0.0
"""
    target = write(project / "per_step.py", source)
    assert main(["--no-cache", "--fix", "--unsafe-fixes", "-q", str(target)]) == 0
    fixed = target.read_text()
    assert "            loss.backward()\n            h = h.detach()\n" in fixed, fixed
    module = load_module(target)
    with trace(None) as t:
        module.train()
    assert [c.horizon for c in t.calls] == [5] * 6


def test_no_fix_when_the_state_shape_is_unknown(cli, project):
    source = """\
hidden = model.init_hidden(4)
for x, y in batches:
    out, hidden = model(x, hidden)
    loss = (out - y).pow(2).mean()
    loss.backward()
"""
    target = write(project / "unknown.py", source)
    run = cli("--no-cache", "--diff", "--unsafe-fixes", str(target))
    assert (run.code, run.out) == (0, "")
    assert "TBP001 " in cli("--no-cache", str(target)).out


def test_a_notebook_is_fixed_inside_its_cell(cli, project):
    def notebook(*cells: str) -> dict:
        return {
            "cells": [
                {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                 "source": text.splitlines(keepends=True)}
                for text in cells
            ],
            "metadata": {"kernelspec": {"name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }  # fmt: skip

    setup = "%matplotlib inline\nimport torch.nn as nn\nrnn = nn.GRU(8, 16)\nhidden = None"
    loop = (
        "for x, y in batches:\n"
        "    out, hidden = rnn(x, hidden)\n"
        "    (out - y).pow(2).mean().backward()\n"
        "    hidden.detach()  # cut"
    )
    document = notebook(setup, loop)
    target = write(project / "train.ipynb", json.dumps(document, indent=1) + "\n")

    run = cli("--no-cache", "--fix", str(target))

    assert run.code == 0, run.out + run.err
    fixed = json.loads(target.read_text())
    assert fixed["cells"][0] == document["cells"][0]
    assert "".join(fixed["cells"][1]["source"]) == loop.replace(
        "    hidden.detach()", "    hidden = hidden.detach()"
    )
    assert fixed["metadata"] == document["metadata"]
    assert target.read_text().startswith('{\n "cells": [')  # nbformat's one-space indent kept


def test_a_fix_that_would_not_parse_is_dropped(cli, project, monkeypatch):
    target = project / "discarded.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", target)
    before = target.read_bytes()
    monkeypatch.setattr(fixer, "apply_fixes", lambda text, fixes: (text + "(((\n", fixes))
    run = cli("--no-cache", "--fix", "--jobs", "1", str(target))
    assert target.read_bytes() == before
    assert "the fixed code would not parse" in run.err
    assert run.code == 1


def test_a_failed_write_leaves_the_file_and_no_temporary(cli, project, monkeypatch):
    target = project / "discarded.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", target)
    before = target.read_bytes()

    def interrupted(source: object, destination: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    run = cli("--no-cache", "--fix", str(target))
    assert target.read_bytes() == before
    assert sorted(p.name for p in project.iterdir()) == [".git", "discarded.py"]
    assert "cannot write the fix: No space left on device" in run.err
    assert "(0 fixed, 1 remaining)" in run.out
    assert run.code == 1


def test_a_file_changed_meanwhile_is_not_overwritten(project):
    target = project / "a.py"
    target.write_text("x = 1\n")
    outcome = fixer.FixOutcome(str(target), b"x = 0\n", b"x = 2\n")
    outcome.fixed_codes["TBP003"] = 1
    warnings = fixer.write_fixes([outcome])
    assert target.read_text() == "x = 1\n"
    assert warnings == [
        f"tbptt-lint: warning: {target}: not fixed, the file changed while it was being fixed"
    ]
    assert fixer.fixed_total([outcome]) == 0


def test_the_fixed_file_keeps_its_permissions_and_symlinks_stay_links(cli, project):
    real = project / "real.py"
    shutil.copy(FIXTURES / "bug_tbp003_detach_result_discarded.py", real)
    real.chmod(0o640)
    link = project / "link.py"
    link.symlink_to(real.name)
    run = cli("--no-cache", "--fix", str(link))
    assert run.code == 0, run.out + run.err
    assert link.is_symlink()
    assert "hidden = hidden.detach()" in real.read_text()
    assert (real.stat().st_mode & 0o777) == 0o640


def test_temporaries_of_killed_runs_are_removed_and_live_ones_kept(project):
    target = write(project / "a.py", "x = 0\n")
    dead = project / f".a.py.{2**22 + 12345}.0badf00d{atomic.TEMPORARY_SUFFIX}"
    live = project / f".a.py.{os.getpid()}.0badf00d{atomic.TEMPORARY_SUFFIX}"
    other = project / ".a.py.notes.tbptt-lint-tmp.txt"
    for stray in (dead, live, other):
        stray.write_text("half a fi")
    atomic.replace_content(target, b"x = 0\n", b"x = 1\n")
    assert target.read_text() == "x = 1\n"
    assert sorted(p.name for p in project.iterdir() if p.name != ".git") == sorted(
        ["a.py", live.name, other.name]
    )
