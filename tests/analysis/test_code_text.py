"""The prefilters read the code alone: a `backward(` or a `detach()` in a docstring or a comment
(torch documents `loss.backward()` in hundreds of them) sends no file to phase 2 and no block to
phase 1's parser. Where the lexer may read the literals otherwise than Python (Python 3.12's
nested f-string quotes), the text is searched as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tbptt_lint.analysis import api
from tbptt_lint.analysis.api import may_hold_file_findings, summarize_source
from tbptt_lint.analysis.chunks import code_text
from tbptt_lint.engine import lint_paths, lint_source
from tbptt_lint.settings import Settings

DOCUMENTED = '''\
import torch


def step(model, x):
    """Run the model.

    >>> loss = step(model, x)
    >>> loss.backward()
    """
    # then call h.detach() before the next window
    return model(x).sum()
'''

# The same module with the backward in its code: read as before.
CALLED = DOCUMENTED.replace("return model(x).sum()", "loss = model(x).sum()\n    loss.backward()")

# A training loop whose only `backward` is a comment: no finding either way, and not read.
LOOP_COMMENTED = """\
import torch

def train(model, loader, h):
    for x in loader:
        out, h = model(x, h)
        loss = out.sum()  # loss.backward() runs in the trainer
"""

LOOP = """\
import torch

def train(model, opt, loader):
    h = None
    for x in loader:
        out, h = model(x, h)
        loss = out.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def test_comments_and_strings_are_blanked_line_for_line() -> None:
    code = code_text(DOCUMENTED)
    assert "backward" not in code and "detach" not in code
    assert code.count("\n") == DOCUMENTED.count("\n")
    assert len(code) == len(DOCUMENTED)
    assert "return model(x).sum()" in code


def test_f_strings_keep_their_code() -> None:
    source = 'print(f"{loss.backward()}")\nx = "h.detach()"\n'
    code = code_text(source)
    assert "loss.backward()" in code
    assert "h.detach()" not in code


@pytest.mark.parametrize(
    "source",
    [
        # Python 3.12 nests quotes of one kind in an f-string: the lexer would lose its way.
        'x = f"{d["k"]}" + "a"\nloss.backward()\n',
        # A single-quoted f-string running over lines (3.12): a quote the lexer reads as none.
        'x = f"{a\n}"\n',
    ],
)
def test_text_is_kept_when_the_lexer_may_misread_it(source: str) -> None:
    assert code_text(source) == source


def test_a_docstring_backward_makes_no_candidate() -> None:
    assert not may_hold_file_findings(DOCUMENTED)
    assert not may_hold_file_findings(LOOP_COMMENTED)


def test_a_backward_in_code_makes_a_candidate() -> None:
    assert may_hold_file_findings(CALLED)
    assert may_hold_file_findings(LOOP)


def test_a_docstring_helper_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_parse = api.parse

    def counting(source: str) -> object:
        parsed.append(source)
        return real_parse(source)

    monkeypatch.setattr(api, "parse", counting)
    summary = summarize_source(DOCUMENTED, "helpers")
    assert parsed == []
    assert summary.functions == {}
    # Its twin with the backward in its code is parsed, and known to back-propagate.
    summary = summarize_source(CALLED, "helpers")
    assert parsed
    assert summary.functions["helpers.step"].does_backward


def test_findings_are_those_of_the_code(tmp_path: Path) -> None:
    settings = Settings()
    assert lint_source(LOOP_COMMENTED, "train.py", settings) == []
    (tmp_path / "train.py").write_text(LOOP_COMMENTED, encoding="utf-8")
    assert lint_paths([tmp_path], settings, jobs=1).diagnostics == []
    # A loop whose state is never cut is still reported with a docstring beside it.
    documented_loop = LOOP.replace(
        "def train(model, opt, loader):\n",
        'def train(model, opt, loader):\n    """Calls loss.backward() per batch."""\n',
    )
    codes = {d.code for d in lint_source(documented_loop, "train.py", settings)}
    assert codes == {d.code for d in lint_source(LOOP, "train.py", settings)}
    assert "TBP001" in codes
