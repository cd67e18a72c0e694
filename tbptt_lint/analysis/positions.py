"""Line and column positions of a module's nodes, without walking the blank lines.

The module that the analysis parses keeps only the blocks that can matter; the others are
blank lines, so that positions stay those of the file. libcst's PositionProvider walks and
re-generates every node of the module, those blank lines included: in a 20 MB file with a few
hundred kept functions that is over a million nodes, for a handful of findings. Here the
positions are resolved on a compact copy of the module, its top-level statements without the
empty lines before them, and each node is moved down by the empty lines that were taken out
above its statement: what it costs is what the kept code costs.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from typing import cast

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

# Python's own line breaks (str.splitlines also breaks at \f, \x1c and others).
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

Span = tuple[int, int, int, int]  # line, column, end line, end column; 1-based


class StatementPositions:
    """`positions[node]` is the node's span in the module's text."""

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self._resolved: Resolved | None = None

    def __getitem__(self, node: cst.CSTNode) -> Span:
        if self._resolved is None:
            self._resolved = Resolved(self._module)
        code_range, shift = self._resolved.find(node)
        return (
            code_range.start.line + shift,
            code_range.start.column + 1,
            code_range.end.line + shift,
            code_range.end.column + 1,
        )


class Resolved:
    """The compact module's positions, and for each of its statements the empty lines taken
    out above it."""

    def __init__(self, module: cst.Module) -> None:
        removed = len(module.header)  # one EmptyLine is one line
        compact: list[cst.BaseStatement] = []
        self.shifts: list[int] = []
        self.copies: dict[cst.CSTNode, cst.CSTNode] = {}
        for statement in module.body:
            removed += len(statement.leading_lines)
            # `with_changes` copies the statement itself; its children are shared.
            copy = statement.with_changes(leading_lines=())
            self.copies[statement] = copy
            compact.append(copy)
            self.shifts.append(removed)
        small = module.with_changes(header=(), body=compact, footer=())
        self.ranges = _positions(small)
        # A statement's first line: its first decorator's, which comes before a function's
        # or class's own range. Its nodes (comments closing its body included) lie from there
        # to the next statement's first line.
        self.first_lines = [self.ranges[_first_node(copy)].start.line for copy in compact]

    def find(self, node: cst.CSTNode) -> tuple[CodeRange, int]:
        code_range = self.ranges[self.copies.get(node, node)]
        statement = bisect_right(self.first_lines, code_range.start.line) - 1
        return code_range, self.shifts[statement]


def _positions(module: cst.Module) -> Mapping[cst.CSTNode, CodeRange]:
    """PositionProvider's ranges of every node of the module. `MetadataWrapper.resolve` also
    walks the whole tree once more with an empty visitor (the batch of providers that have
    none): a third of the cost, for nothing. The provider is run alone, as `resolve` runs it
    (its code generation is where the positions come from), unless this libcst lacks the
    parts used."""
    provider = PositionProvider()
    computed = getattr(provider, "_computed", None)
    generate = getattr(provider, "_gen_impl", None)
    if not isinstance(computed, dict) or generate is None or PositionProvider.METADATA_DEPENDENCIES:
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    generate(module)
    return cast("Mapping[cst.CSTNode, CodeRange]", provider._computed)


def _first_node(statement: cst.CSTNode) -> cst.CSTNode:
    decorators = getattr(statement, "decorators", ())
    return decorators[0] if decorators else statement
