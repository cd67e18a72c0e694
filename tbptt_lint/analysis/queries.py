"""Questions several rules ask of a file's loop model, answered once per file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from tbptt_lint.analysis.events import BackwardSite, RecurrentCall, StateRead, UnitEvents
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.values import CUT, LEAF, Status

FULL = "full"
PARTIAL = "partial"
RETAINED = "retained"


@dataclass
class Leak:
    """A recurrent call that reads state whose graph a backward already ran through."""

    unit: UnitEvents
    call: RecurrentCall
    reads: list[StateRead]  # the stale or partially cut reads
    kind: str  # FULL, PARTIAL or RETAINED
    backwards: list[BackwardSite]
    # Every stale read is explained by a cut that cuts nothing (TBP003, TBP014): the rules of
    # the missing cut (TBP001, TBP002) leave it to those, but a `retain_graph=True` that hides
    # it is still a band-aid of its own (TBP005).
    explained: bool = False


def spans_contain(model: FileModel, outer: cst.CSTNode, inner: cst.CSTNode) -> bool:
    o_line, o_col, o_end_line, o_end_col = model.span(outer)
    i_line, i_col, i_end_line, i_end_col = model.span(inner)
    return (o_line, o_col) <= (i_line, i_col) and (i_end_line, i_end_col) <= (
        o_end_line,
        o_end_col,
    )


class FileQueries:
    def __init__(self, model: FileModel) -> None:
        self.model = model

    @cached_property
    def backward_by_node(self) -> dict[int, BackwardSite]:
        return {id(site.call): site for _, site in self.model.backwards()}

    @cached_property
    def leaks(self) -> list[Leak]:
        found: list[Leak] = []
        for unit in self.model.units:
            # A discarded `h.detach()` or an in-place detach of a view is the better
            # explanation of the leak (TBP003, TBP014). A detach that may be a custom object's
            # in-place cut explains nothing for sure: its state is left alone altogether.
            explained = {d.state for d in unit.discarded_detaches if d.certain}
            explained |= {v.state for v in unit.inplace_view_detaches}
            explained |= {a.state for a in unit.alias_cuts}
            uncertain = {d.state for d in unit.discarded_detaches if not d.certain}
            for call in unit.recurrent_calls:
                if call.no_grad:
                    continue
                leak = self._leak_of(unit, call, explained, uncertain)
                if leak is not None:
                    found.append(leak)
        return found

    def _leak_of(
        self, unit: UnitEvents, call: RecurrentCall, explained: set[str], uncertain: set[str]
    ) -> Leak | None:
        reads = unit.reads_of(call)
        stale = [
            r
            for r in reads
            if r.value.status in (Status.STALE, Status.PARTIAL) and r.value.backwards
        ]
        stale = [r for r in stale if r.name not in uncertain]
        unexplained = [r for r in stale if r.name not in explained]
        is_explained = bool(stale) and not unexplained
        if not is_explained:
            stale = unexplained
        # Reading stale state only leaks when a backward later runs through this call.
        if not stale or id(call.call) not in unit.consumed:
            return None
        by_name = {r.name: r for r in reads}
        kind = FULL
        if any(r.value.status == Status.PARTIAL for r in stale):
            kind = PARTIAL
        stale_names = {r.name for r in stale}
        for group in call.groups:
            cut = {n for n in group if n in by_name and by_name[n].origins_of(CUT)}
            if cut - stale_names and stale_names & set(group):
                kind = PARTIAL
        sites = [
            self.backward_by_node[id(node)]
            for read in stale
            for node in read.value.backwards
            if id(node) in self.backward_by_node
        ]
        if kind == FULL and sites and all(site.retain_graph for site in sites):
            kind = RETAINED
        return Leak(unit, call, stale, kind, sites, is_explained)

    def leaked_states(self, unit: UnitEvents) -> set[str]:
        """States read stale by a recurrent call that a backward later runs through, whatever
        rule explains it."""
        return {
            read.name
            for read in unit.reads.values()
            if read.value.status in (Status.STALE, Status.PARTIAL)
            and read.value.backwards
            and id(read.call.call) in unit.consumed
        }

    def innermost_loop(self, call: RecurrentCall) -> cst.CSTNode | None:
        return call.loops[-1] if call.loops else None

    def backward_after_loop(self, unit: UnitEvents, loop: cst.CSTNode) -> BackwardSite | None:
        """A backward that runs after `loop` finishes, in the scope around it."""
        parents = set(unit.loop_parents.get(loop, ()))
        loop_line = self.model.span(loop)[2]
        for site in unit.backwards:
            if loop in site.loops or not set(site.loops) <= parents:
                continue
            if self.model.line(site.call) > loop_line:
                return site
        return None

    def is_carried(self, unit: UnitEvents, call: RecurrentCall) -> bool:
        """Whether the state flows from one pass of the loop to the next (cut or not)."""
        for read in unit.reads_of(call):
            value = read.value
            if value.status == Status.UNKNOWN:
                # What the analysis could not model says nothing either way; a cut or a graph
                # the loop itself feeds back still does.
                if read.origins_of(CUT) or read.origins_of(LEAF) or read.origins_of("LIVE"):
                    return True
                continue
            if value.status != Status.FRESH or value.how in (CUT, LEAF):
                return True
        return False


@dataclass
class PerStepFreshState:
    """A recurrent call in a time loop with no backward inside it, whose state is made fresh
    (cut or reset) inside that same loop on every pass, while a backward runs after the loop."""

    unit: UnitEvents
    read: StateRead
    loop: cst.CSTNode
    origins: list[cst.CSTNode]  # the cuts or resets inside the loop
    backward: BackwardSite


def per_step_fresh_state(model: FileModel, how: str) -> list[PerStepFreshState]:
    """TBP004 (how=CUT) and TBP015 (how=RESET) ask the same question of the loop model."""
    ask = queries(model)
    found = []
    for unit, read in model.reads():
        loop = ask.innermost_loop(read.call)
        if loop is None or read.value.status != Status.FRESH or read.call.no_grad:
            continue
        if loop in unit.loops_with_backward:
            continue
        inside = [o for o in read.origins_of(how) if spans_contain(model, loop, o)]
        if not inside:
            continue
        site = ask.backward_after_loop(unit, loop)
        if site is not None:
            found.append(PerStepFreshState(unit, read, loop, inside, site))
    return found


def queries(model: FileModel) -> FileQueries:
    return model.once(FileQueries)
