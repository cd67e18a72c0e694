"""A method parsed alone, from the file's text (a one-step cell's `forward` in phase 1, a
model's `forward` or `__init__` the final pass did not keep), is parsed whatever comments sit
at column 0 inside it or after it.

Found by strict mode over the speed corpus (fairseq's `kmeans_attention.py` puts a
`# section` comment at column 0 between classes): the last method's block runs on to the
next class and takes the comment with it, and `textwrap.dedent` then left the whole text
indented, so it did not parse and the cell or model was not read (TBP015 missed)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tbptt_lint.analysis.chunks import dedented, member_blocks, top_level_blocks
from tbptt_lint.engine import lint_source
from tbptt_lint.settings import Settings

MIRROR = Path(__file__).parents[1] / "realworld" / "mirrors" / "sf_pgt_tgcn_no_state.py"
CELL_RETURN = "        return z * H + (1 - z) * candidate\n"
CELL_GATE = "        r = torch.sigmoid"
MODEL_CALL = "        h = self.recurrent(x, adjacency)  # expect: TBP015\n"


def found(source: str) -> list[tuple[str, int]]:
    return sorted((d.code, d.line) for d in lint_source(source, "example.py", Settings()))


def expected(source: str) -> list[tuple[str, int]]:
    return sorted(
        (code.strip(), number)
        for number, line in enumerate(source.splitlines(), start=1)
        if (match := re.search(r"# expect: ([A-Z0-9, ]+)", line))
        for code in match.group(1).split(",")
    )


def cell_with_comment(where: str) -> str:
    source = MIRROR.read_text(encoding="utf-8")
    if where == "after":  # between the cell and the model, as a section title
        return source.replace(CELL_RETURN, CELL_RETURN + "\n\n# the model\n")
    return source.replace(CELL_GATE, "# a comment at column 0\n" + CELL_GATE)


@pytest.mark.parametrize("where", ["after", "inside"])
def test_a_cell_with_a_column_0_comment_is_still_read(where: str) -> None:
    source = cell_with_comment(where)
    assert expected(source)
    assert found(source) == expected(source)


@pytest.mark.parametrize("where", ["after", "inside"])
def test_silent_twin_the_model_hands_the_cell_its_state(where: str) -> None:
    source = cell_with_comment(where)
    source = source.replace(MODEL_CALL, "        h = self.recurrent(x, adjacency, h)\n")
    source = source.replace(
        "def forward(self, x, adjacency):", "def forward(self, x, adjacency, h):"
    )
    source = source.replace("y_hat = model(x, adjacency)", "y_hat = h = model(x, adjacency, h)")
    source = source.replace("        cost = 0\n", "        cost = 0\n        h = None\n")
    assert "expect:" not in source
    assert found(source) == []


MODEL = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 16)
        self.h = None

    def forward(self, x, h=None):
        return self.gru(x, h)

# the training run
net = Net()
h = None
for x, y in batches:
    if h is not None:
        h = h.detach()
    out, h = {call}
    (out - y).pow(2).mean().backward()
"""


def test_a_model_forward_followed_by_a_column_0_comment_is_read() -> None:
    source = MODEL.format(call="net(x)  # expect: TBP015")
    assert found(source) == expected(source) == [("TBP015", 19)]


def test_silent_twin_the_model_is_handed_its_state() -> None:
    assert found(MODEL.format(call="net(x, h)")) == []


def _members(source: str) -> list[str]:
    lines = source.splitlines(keepends=True)
    return [dedented(m) for b in top_level_blocks(source) for m in member_blocks(lines, b)]


def test_dedented_keeps_strings_and_brackets_and_drops_comment_indentation() -> None:
    source = '''\
class A:
    def f(self):
        text = """
column 0 inside a string
"""
        value = call(
            1
)
# between methods
        return value

    def g(self):
        return 1


# after the class
'''
    first, second = _members(source)
    assert first == (
        "def f(self):\n"
        '    text = """\n'
        "column 0 inside a string\n"
        '"""\n'
        "    value = call(\n"
        "        1\n"
        ")\n"
        "# between methods\n"
        "    return value\n"
        "\n"
    )
    assert second == "def g(self):\n    return 1\n\n\n# after the class\n"
    for text in (first, second):
        ast.parse(text)
