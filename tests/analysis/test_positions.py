"""Positions resolved statement by statement agree with libcst's own, node for node."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from tbptt_lint.analysis.chunks import keep_blocks
from tbptt_lint.analysis.positions import StatementPositions, _positions, provider_positions

ROOT = Path(__file__).parents[2]
FIXTURES = sorted((ROOT / "fixtures").glob("*.py"))
# The package's own sources: most kinds of node.
SOURCES = sorted((ROOT / "tbptt_lint").rglob("*.py"))

FILLER = """\
class Filler:
    \"\"\"Blanked: nothing here back-propagates.\"\"\"

    def forward(self, x):
        return x


def helper(x):
    return x + 1
"""

AWKWARD = [
    # header comments, decorators with comments between, a multi-line string, comments that
    # close a body, several statements on one line, no newline at the end
    "# c\n\n@dec\n# x\n@other(1)\ndef f():\n    x = '''a\nb'''\n    # foot\n\n\n\n"
    "class A: pass\nx = 1; y = 2",
    "if a:\n    pass\nelse:\n    # c\n    b()\n    # tail\n\n\n\ntry:\n  x\nexcept E:\n  y\n",
    "x = (\n    1,\n    2,\n)\n\n\nasync def g():\n    async with a as b:\n        await b\n",
]


def _leading(module: cst.Module) -> set[int]:
    """ids of the nodes in the empty lines around top-level statements (never reported)."""
    ids: set[int] = set()
    todo: list[cst.CSTNode] = [*module.header, *module.footer]
    for statement in module.body:
        todo.extend(statement.leading_lines)
    while todo:
        node = todo.pop()
        ids.add(id(node))
        todo.extend(node.children)
    return ids


def _assert_same(source: str) -> int:
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    positions = StatementPositions(module)
    leading = _leading(module)
    checked = 0
    for node, code_range in expected.items():
        if isinstance(node, cst.Module) or id(node) in leading:
            continue
        start, end = code_range.start, code_range.end
        assert positions[node] == (start.line, start.column + 1, end.line, end.column + 1), type(
            node
        ).__name__
        checked += 1
    return checked


@pytest.mark.parametrize("source", AWKWARD + [s.replace("\n", "\r\n") for s in AWKWARD])
def test_awkward_layouts(source: str) -> None:
    assert _assert_same(source) > 10


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixtures_whole_and_with_blocks_blanked(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    assert _assert_same(source) > 0
    # As the analysis parses it: only the blocks that call backward, the rest blank lines
    # (a helper class and function added before and after, so that some are blanked).
    padded = f"{FILLER}\n\n{source}\n\n{FILLER}"
    reduced = keep_blocks(padded, lambda text: "backward" in text)
    assert reduced.count("\n") == padded.count("\n")
    assert "class Filler" not in reduced
    assert _assert_same(reduced) > 0


OLD_MAC = 'x = 1\ry = """a\rb"""\rdef f():\r    return (1,\r  2)\r'


@pytest.mark.parametrize("source", [*AWKWARD, *(s.replace("\n", "\r\n") for s in AWKWARD), OLD_MAC])
def test_tracked_ranges_are_the_providers_awkward(source: str) -> None:
    module = cst.parse_module(source)
    assert _positions(module) == provider_positions(module)


def test_tracked_ranges_are_the_providers_on_real_sources() -> None:
    """The tracked code generation gives PositionProvider's range for every node (start and
    end alike) of the fixtures and the package."""
    checked = 0
    for path in [*FIXTURES, *SOURCES]:
        module = cst.parse_module(path.read_text(encoding="utf-8"))
        expected = provider_positions(module)
        assert _positions(module) == expected, path
        checked += len(expected)
    assert checked > 100_000
