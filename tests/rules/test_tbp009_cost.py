"""TBP009 searches a window loop for its carried calls only when the loop slices a window:
every one of its checks compares the loop's slices, and the search visits every recurrent
call of the file, which made a file of many `for epoch in range(n)` loops quadratic."""

from __future__ import annotations

import textwrap

import pytest

from tbptt_lint.analysis.api import check_source
from tbptt_lint.rules import tbp009_window_misaligned as tbp009
from tbptt_lint.settings import Settings

LOOP = """
def train_{n}(rnn, batches, opt, epochs):
    hidden = None
    for epoch in range(epochs):
        for x, y in batches:
            out, hidden = rnn(x, hidden)
            loss = ((out - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            hidden = hidden.detach()
"""
WINDOWED = """
def windows(rnn, data, opt, k):
    hidden = None
    for i in range(0, len(data), k):
        out, hidden = rnn(data[i:i + k + 3], hidden)
        loss = out.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        hidden = hidden.detach()
"""


def _searched(source: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], int]:
    calls = 0
    original = tbp009._carried_calls

    def counted(*args: object) -> object:
        nonlocal calls
        calls += 1
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(tbp009, "_carried_calls", counted)
    findings = check_source(textwrap.dedent(source), "train.py", Settings())
    return [f.code for f in findings if f.code == "TBP009"], calls


def test_window_loops_without_slices_are_not_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "".join(LOOP.format(n=n) for n in range(5))
    assert _searched(source, monkeypatch) == ([], 0)


def test_a_sliced_window_is_still_searched_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "".join(LOOP.format(n=n) for n in range(5)) + WINDOWED
    assert _searched(source, monkeypatch) == (["TBP009"], 1)
