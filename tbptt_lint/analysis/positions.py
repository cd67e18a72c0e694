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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

# Python's own line breaks (str.splitlines also breaks at \f, \x1c and others).
LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

Span = tuple[int, int, int, int]  # line, column, end line, end column; 1-based
# As PositionProvider's CodeRange: line 1-based, column 0-based.
Range = tuple[int, int, int, int]


class StatementPositions:
    """`positions[node]` is the node's span in the module's text."""

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self._resolved: Resolved | None = None

    def __getitem__(self, node: cst.CSTNode) -> Span:
        if self._resolved is None:
            self._resolved = Resolved(self._module)
        (line, column, end_line, end_column), shift = self._resolved.find(node)
        return (line + shift, column + 1, end_line + shift, end_column + 1)


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
        self.first_lines = [self.ranges[_first_node(copy)][0] for copy in compact]

    def find(self, node: cst.CSTNode) -> tuple[Range, int]:
        code_range = self.ranges[self.copies.get(node, node)]
        statement = bisect_right(self.first_lines, code_range[0]) - 1
        return code_range, self.shifts[statement]


def _positions(module: cst.Module) -> Mapping[cst.CSTNode, Range]:
    """PositionProvider's ranges of every node of the module, as tuples. Its code generation
    is where positions come from; `_TrackedCodegen` is that state with the same arithmetic,
    minus a regular-expression split of every token and two objects per node (a third of
    the run on a file of many loops). Without the parts of libcst it relies on, the provider
    itself runs, through `MetadataWrapper.resolve`."""
    if _TRACKED is not None:
        state = _TRACKED(module.default_indent, module.default_newline)
        module._codegen(state)
        return state.ranges
    ranges = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {node: _as_range(found) for node, found in ranges.items()}


def provider_positions(module: cst.Module) -> dict[cst.CSTNode, Range]:
    """libcst's own PositionProvider ranges, as tuples (what `_positions` must give)."""
    ranges = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {node: _as_range(found) for node, found in ranges.items()}


def _as_range(found: CodeRange) -> Range:
    return (found.start.line, found.start.column, found.end.line, found.end.column)


NEWLINE = re.compile(r"\r\n?|\n")  # libcst's position_provider.NEWLINE_RE


class TrackedCodegen(CodegenState):
    """libcst's PositionProvidingCodegenState, recording plain tuples: a node's range is where
    the code generation stood before and after it, unless the node names the children its
    syntactic range starts or ends with (`record_syntactic_position`)."""

    def __init__(self, default_indent: str, default_newline: str) -> None:
        super().__init__(default_indent, default_newline)
        self.line = 1  # 1-based
        self.column = 0  # 0-based
        self.starts: list[tuple[int, int]] = []
        self.ranges: dict[cst.CSTNode, Range] = {}

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:  # noqa: ARG002 - libcst calls it so
        self.starts.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        line, column = self.starts.pop()
        # A syntactic position recorded already is kept.
        if node not in self.ranges:
            self.ranges[node] = (line, column, self.line, self.column)

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        line, column = self.line, self.column
        try:
            yield
        finally:
            end_line, end_column = self.line, self.column
            if start_node is not None:
                line, column = self.ranges[start_node][:2]
            if end_node is not None:
                end_line, end_column = self.ranges[end_node][2:]
            self.ranges[node] = (line, column, end_line, end_column)


def _tracked_state() -> type[TrackedCodegen] | None:
    """TrackedCodegen where libcst's code generation calls what it overrides, as it does in
    the versions this package supports; else None (the provider runs)."""
    names = ("add_token", "add_indent_tokens", "before_codegen", "after_codegen")
    needed = (*names, "record_syntactic_position", "tokens", "indent_tokens")
    if not all(hasattr(CodegenState, name) for name in needed):
        return None
    return TrackedCodegen


_TRACKED = _tracked_state()


def _first_node(statement: cst.CSTNode) -> cst.CSTNode:
    decorators = getattr(statement, "decorators", ())
    return decorators[0] if decorators else statement
