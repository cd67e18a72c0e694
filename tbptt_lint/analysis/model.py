"""The loop model of one file: every unit's events, plus positions for reporting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import libcst as cst

from tbptt_lint.analysis.context import FileContext
from tbptt_lint.analysis.events import BackwardSite, RecurrentCall, StateRead, UnitEvents
from tbptt_lint.analysis.positions import LINE, StatementPositions
from tbptt_lint.diagnostics import Finding, Fix

T = TypeVar("T")


class FileModel:
    def __init__(
        self,
        module: cst.Module,
        context: FileContext,
        units: list[UnitEvents],
        gradient_units: list[tuple[cst.CSTNode, str | None]] | None = None,
        loss_units: list[UnitEvents] | None = None,
    ) -> None:
        self.module = module
        self.context = context
        self.units = units
        # Functions (with their class) that only TBP012 reads: kept for the optimizer calls
        # they make, or back-propagating only through a method of the run.
        self.gradient_units = gradient_units or []
        # Units that only TBP006 reads: loops that sum a loss which a function they call
        # back-propagated (`net.train_step(loss, opt)`, `loss = model(x)`), with no backward
        # of their own that would make them units of every rule.
        self.loss_units = loss_units or []
        self._positions: StatementPositions | None = None
        self._lines: list[str] | None = None
        self._derived: dict[Callable[[FileModel], Any], Any] = {}

    def once(self, compute: Callable[[FileModel], T]) -> T:
        """`compute(self)`, computed on the first call for this file and kept (the queries,
        the file's loaders: what several rules read)."""
        try:
            value: T = self._derived[compute]
        except KeyError:
            value = self._derived[compute] = compute(self)
        return value

    def span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        # Positions are resolved only for files that have something to report.
        if self._positions is None:
            self._positions = StatementPositions(self.module)
        return self._positions[node]

    def source_lines(self) -> list[str]:
        """The module's lines with their line endings; kept blocks sit at their own lines."""
        if self._lines is None:
            # Python's own line breaks only: str.splitlines also breaks at \f, \x1c and others.
            self._lines = LINE.findall(self.module.code)
        return self._lines

    def line(self, node: cst.CSTNode) -> int:
        return self.span(node)[0]

    def finding(
        self, code: str, node: cst.CSTNode, message: str, fix: Fix | None = None
    ) -> Finding:
        line, column, end_line, end_column = self.span(node)
        return Finding(code, message, line, column, end_line, end_column, fix)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def loops(self) -> list[cst.CSTNode]:
        """Every loop of the interpreted units; the others cannot hold a finding."""
        return [loop for unit in self.units for loop in unit.loop_parents]

    def recurrent_calls(self) -> Iterator[tuple[UnitEvents, RecurrentCall]]:
        for unit in self.units:
            for call in unit.recurrent_calls:
                yield unit, call

    def reads(self) -> Iterator[tuple[UnitEvents, StateRead]]:
        for unit in self.units:
            for read in unit.reads.values():
                yield unit, read

    def backwards(self) -> Iterator[tuple[UnitEvents, BackwardSite]]:
        for unit in self.units:
            for site in unit.backwards:
                yield unit, site
