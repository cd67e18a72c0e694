"""Blocks are found without parsing, and a line that begins inside a string literal (a
docstring or a template with text at column 0) neither starts nor ends one: such a helper's
block is summarised whole, not cut short and dropped, and the reduced file still parses."""

from __future__ import annotations

import ast
from pathlib import Path

from tbptt_lint.analysis.api import summarize_source
from tbptt_lint.analysis.chunks import inside_strings, keep_blocks, top_level_blocks
from tbptt_lint.engine import lint_paths
from tbptt_lint.settings import Settings

# Column-0 text inside strings: a docstring, a template with a `def` in it, a string
# continued by a backslash; a quote inside a comment opens nothing.
SOURCE = '''\
import torch


def repackage_hidden(h):
    """Cut the history of a hidden state.
Column 0 text, as a pasted example:
def not_a_function():
"""
    return h.detach()  # it's cut: a quote here opens nothing


TEMPLATE = """
class NotAClass:
    pass
"""


def other(x):
    message = 'one\\
def still_the_string(): pass'
    return x


class Model:
    def forward(self, x):
        code = """
    def not_a_method(self):
"""
        return x

    def reset(self):
        pass
'''


def spans(source: str) -> list[tuple[int, int]]:
    return [(block.first_line, block.end_line) for block in top_level_blocks(source)]


def test_lines_inside_strings_start_no_block() -> None:
    assert spans(SOURCE) == [(3, 11), (17, 23), (23, 32)]


def test_the_lines_that_begin_inside_a_string() -> None:
    lines = SOURCE.splitlines(keepends=True)
    inside = sorted(inside_strings(SOURCE))
    assert [lines[number].rstrip() for number in inside] == [
        "Column 0 text, as a pasted example:",
        "def not_a_function():",
        '"""',
        "class NotAClass:",
        "    pass",
        '"""',
        "def still_the_string(): pass'",
        "    def not_a_method(self):",
        '"""',
    ]


def test_without_multiline_strings_nothing_is_inside() -> None:
    source = "def f():\n    return 'a'  # '''\n\nx = \"#\"\n"
    assert not inside_strings(source)
    assert spans(source) == [(0, 3)]


def test_the_reduced_file_parses_and_keeps_positions() -> None:
    reduced = keep_blocks(SOURCE, lambda text: "forward" in text or "repackage" in text)
    ast.parse(reduced)
    assert reduced.count("\n") == SOURCE.count("\n")
    assert "not_a_method" in reduced and "def reset" not in reduced
    assert "def other" not in reduced and "def repackage_hidden" in reduced


def test_a_helper_with_column_0_docstring_text_is_summarised() -> None:
    summary = summarize_source(SOURCE, "utils")
    assert "utils.repackage_hidden" in summary.functions
    assert summary.functions["utils.repackage_hidden"].returns_cut


HELPER = '''\
def repackage_hidden(h):
    """Wraps the hidden state in new Tensors, to detach them from their history.
Example:
    h = repackage_hidden(h)
"""
    return h{cut}
'''

TRAIN = """\
import torch
from utils import repackage_hidden

model = torch.nn.LSTM(10, 20)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = repackage_hidden(hidden)
    out, hidden = model(x, hidden)
    loss = criterion(out, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
"""


def lint_project(root: Path, cut: str) -> list[tuple[str, str, int]]:
    (root / "utils.py").write_text(HELPER.format(cut=cut), encoding="utf-8")
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    settings = Settings(select=("TBP",), project_root=root)
    result = lint_paths([root], settings, jobs=1)
    return sorted((Path(d.path).name, d.code, d.line) for d in result.diagnostics)


def test_silent_when_an_imported_helper_with_column_0_docstring_text_cuts(
    tmp_path: Path,
) -> None:
    assert lint_project(tmp_path, ".detach()") == []


def test_found_when_the_same_helper_cuts_nothing(tmp_path: Path) -> None:
    assert ("train.py", "TBP001", 10) in lint_project(tmp_path, "")


# A signature continued by a backslash at column 0 (timm's byobnet.py): the line after the
# backslash is still the def's, so the reduced text parses and is not replaced by the whole
# file (a file read only for a per-step reset or a loss would lose its findings).
CONTINUED = """\
import torch


def configure(depth: int = 4, width: float = 1.0) -> \\
tuple[int, float]:
    return depth, width


# a comment ending in a backslash continues nothing \\
def train(model, batches):
    for x in batches:
        model(x).sum().backward()
"""


def test_a_line_after_a_backslash_continues_the_block() -> None:
    assert spans(CONTINUED) == [(3, 9), (9, 12)]
    reduced = keep_blocks(CONTINUED, lambda text: "backward" in text)
    ast.parse(reduced)
    assert "def train" in reduced and "configure" not in reduced


# Lines at column 0 inside open brackets (a signature, a call, a dict literal) go on with the
# statement above: they end no block. Brackets inside strings and comments count for nothing.
BRACKETED = """\
def configure(depth=4,
width=1.0):
    label = "(" # an opening bracket in a string ( and in a comment
    return depth, width, label


TABLE = {
"depth": 4,
}


def train(model,
batches):
    for x in batches:
        model(x).sum().backward()
"""


def test_a_line_inside_open_brackets_continues_the_block() -> None:
    assert spans(BRACKETED) == [(0, 6), (11, 15)]
    reduced = keep_blocks(BRACKETED, lambda text: "backward" in text)
    ast.parse(reduced)
    assert "def train" in reduced and "configure" not in reduced
