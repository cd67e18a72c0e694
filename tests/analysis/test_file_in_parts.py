"""A large file's separate functions are read in parts, one libcst tree at a time, with the
findings of the file read whole (issue 13: a bare tree of a 20k-line file takes 300 MB).

Each test lowers the thresholds so that a small text falls into parts, and compares with the
same text read whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from tbptt_lint.analysis import api
from tbptt_lint.analysis.index import ProjectIndex, SourceSyntaxError
from tbptt_lint.diagnostics import Finding
from tbptt_lint.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HEADER = "import torch\nimport torch.nn as nn\n"
# benchmarks/huge_file.py's shape: every third loop carries its state on uncut (TBP001).
LOOP = """

def train_{n}(rnn, batches, opt, epochs=1):
    hidden = None
    for epoch in range(epochs):
        for x, y in batches:
            out, hidden = rnn(x, hidden)
            loss = ((out - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            {cut}
            if epoch == epochs - 1:
                print(loss.item())
    return hidden
"""
CUT = "hidden = tuple(h.detach() for h in hidden)"
NO_CUT = "# the state is carried on uncut"


def loops(count: int, first: int = 0) -> str:
    return "".join(
        LOOP.format(n=n, cut=NO_CUT if n % 3 == 0 else CUT) for n in range(first, first + count)
    )


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of about one function each, whatever the size of the file."""
    monkeypatch.setattr(api, "PARTS_FROM_CHARACTERS", 0)
    monkeypatch.setattr(api, "PART_CHARACTERS", 1)
    monkeypatch.setattr(api, "SHARED_CHARACTERS", 10**9)


def findings(source: str, parts: bool, monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    with monkeypatch.context() as patch:
        if not parts:
            patch.setattr(api, "PARTS_FROM_CHARACTERS", 10**12)
        return api.check_source(source, "huge.py", Settings(select=("TBP",)))


def models(source: str) -> list[str]:
    """The code of each model's module, as phase 2 builds them one after the other."""
    index = ProjectIndex({"huge": api.summarize_source(source, "huge")})
    return [model.module.code for model in api.build_models(source, "huge", Settings(), index)]


def test_many_separate_loops_are_read_in_parts(small_parts: None) -> None:
    source = HEADER + loops(6)
    codes = models(source)
    assert len(codes) == 6
    for number, code in enumerate(codes):
        assert f"def train_{number}(" in code
        assert code.count("def train_") == 1  # no tree holds the other functions
        assert code.count("\n") == source.count("\n")  # at their own lines
        assert code.startswith(HEADER)  # the imports are in every part


def test_parts_give_the_findings_of_the_whole_file(
    small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = HEADER + loops(9)
    whole = findings(source, False, monkeypatch)
    # Loop n takes lines 3 + 16n to 18 + 16n; loops 0, 3 and 6 carry their state uncut.
    assert sorted({(f.line - 3) // 16 for f in whole if f.code == "TBP001"}) == [0, 3, 6]
    assert findings(source, True, monkeypatch) == whole


def test_the_shared_code_is_reported_once(
    small_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script's top-level loop is in every part; its finding is the whole file's, once."""
    script = """
rnn = nn.LSTM(4, 4)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
hidden = None
for x, y in data:
    out, hidden = rnn(x, hidden)
    loss = ((out - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""
    source = HEADER + loops(4) + script
    assert len(models(source)) == 4
    whole = findings(source, False, monkeypatch)
    script_line = source.count("\n") - 4  # `out, hidden = rnn(x, hidden)` of the script
    assert sum(f.line == script_line for f in whole) == 1
    assert findings(source, True, monkeypatch) == whole


def test_a_file_below_the_threshold_is_read_whole() -> None:
    source = HEADER + loops(6)
    assert api.separate_parts(source, source) is None
    assert len(models(source)) == 1


@pytest.mark.parametrize(
    ("shared", "why"),
    [
        (
            "\n\ndef train_0(rnn, batches, opt):\n    return train_1(rnn, batches, opt)\n",
            "called by another function of the file",
        ),
        (
            "\n\ndef train_0(batches, opt):\n    rnn = nn.LSTM(4, 4)\n"
            "    for x, y in batches:\n        out, h = rnn(x)\n        out.sum().backward()\n",
            "builds an object, which the file knows by name",
        ),
        (
            "\n\ndef train_0(rnn, batches, opt):\n    global hidden\n"
            "    for x, y in batches:\n        out, hidden = rnn(x, hidden)\n"
            "        out.sum().backward()\n",
            "declares a global",
        ),
        (
            "\n\ndef make():\n    return nn.LSTM(4, 4)\n\n\n"
            "def train_0(batches, opt):\n    rnn = make()\n"
            "    for x, y in batches:\n        out, h = rnn(x)\n        out.sum().backward()\n",
            "calls a function of the file (a factory builds an object known by name)",
        ),
    ],
)
def test_functions_that_others_may_see_are_in_every_part(
    small_parts: None, monkeypatch: pytest.MonkeyPatch, shared: str, why: str
) -> None:
    source = HEADER + shared + loops(3, first=1)
    codes = models(source)
    assert len(codes) >= 2, why
    assert all("def train_0(" in code for code in codes), why
    assert findings(source, True, monkeypatch) == findings(source, False, monkeypatch)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.py")), ids=lambda p: p.stem)
def test_fixtures_give_the_same_findings_in_parts(
    small_parts: None, monkeypatch: pytest.MonkeyPatch, path: Path
) -> None:
    source = path.read_text(encoding="utf-8")
    assert findings(source, True, monkeypatch) == findings(source, False, monkeypatch)


def test_a_broken_file_is_read_whole(small_parts: None) -> None:
    """A syntax error in one separate function: no part is read, the error is the file's."""
    source = HEADER + loops(3) + "\n\ndef train_9(rnn, batches:\n    loss.backward()\n"
    assert api.separate_parts(source, source) is None
    with pytest.raises(SourceSyntaxError) as raised:
        api.check_source(source, "huge.py", Settings())
    assert raised.value.line == source.count("\n") - 1
