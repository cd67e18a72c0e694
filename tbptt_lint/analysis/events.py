"""What the loop interpreter observes in one unit (a function or a module's top level).

Rules read these records; they never walk the syntax tree for data flow themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from tbptt_lint.analysis.values import Value

Loops = tuple[cst.CSTNode, ...]  # enclosing For/While nodes, outermost first


@dataclass
class RecurrentCall:
    """`out, h = model(x, h)`: a call that takes back state it produced on an earlier pass."""

    call: cst.Call
    statement: cst.CSTNode
    callee: str  # source text of the called expression
    module_class: str | None  # qualified class when resolved, e.g. "torch.nn.LSTM"
    states: tuple[str, ...]  # names (or `self.attr`) fed back into the call
    # The argument expression that carries each state name into the call.
    state_args: dict[str, cst.BaseExpression]
    # Names that are parts of one composite state (`(h, c)` passed as a tuple).
    groups: tuple[tuple[str, ...], ...]
    loops: Loops
    no_grad: bool
    # The call's class cuts its incoming state inside `forward`.
    cuts_input: bool = False
    # A function of the file that runs a whole window loop over the state it is given (each
    # window cut, with a backward) and returns the final state: `hidden = train_epoch(hidden)`.
    runs_windows: bool = False


@dataclass
class StateRead:
    """The value a state had when a recurrent call read it (joined over all paths)."""

    call: RecurrentCall
    name: str
    value: Value
    # Every node a read value came from, over all paths: cuts, resets, recurrent calls.
    origins: list[cst.CSTNode] = field(default_factory=list)
    # Loops from an earlier pass of which the value read may come, with no reset in between
    # on some path: the state is carried across the passes of each.
    carried_across: set[cst.CSTNode] = field(default_factory=set)

    def origins_of(self, how: str) -> list[cst.CSTNode]:
        return [o for o in self.origins if self.how_by_origin.get(id(o)) == how]

    how_by_origin: dict[int, str] = field(default_factory=dict)


@dataclass
class BackwardSite:
    call: cst.Call
    loops: Loops
    retain_graph: bool
    # Expressions the gradient starts from (`loss` in `loss.backward()`).
    roots: tuple[cst.BaseExpression, ...]
    via_helper: str | None = None  # name of a local helper that calls backward inside


@dataclass
class DiscardedDetach:
    node: cst.CSTNode  # the `x.detach()` call or the `for` loop around it
    target: str  # source text of what was detached: `h`, `hidden[0]`
    loops: Loops
    certain: bool  # False when the target may be an object whose detach() works in place
    state: str = ""  # the variable left uncut: `hidden` for `for h in hidden: h.detach()`
    # `State.detach` when the detach is inside a state class's own cutting method.
    method: str = ""
    # `repackage_hidden` when the cut is a call of the file's function that returns it cut.
    helper: str = ""


@dataclass
class AliasCut:
    """`h = h.detach()` on a local copy of state (`h, c = hidden`) that is never written back."""

    node: cst.CSTNode  # the cut expression
    alias: str
    state: str


@dataclass
class DataCut:
    """A state rebound to a `.data` cut (`h = h.data`, `Variable(h.data)`)."""

    node: cst.CSTNode  # the `.data` expression or the call around it
    name: str


@dataclass
class InplaceDetachOnView:
    node: cst.Call
    target: str  # source text of the view
    state: str  # the variable it is a view of, left uncut
    # For an attribute set to a view by another method: that assignment, and the attribute.
    made: cst.CSTNode | None = None
    holder: str = ""


@dataclass
class Accumulation:
    node: cst.CSTNode  # `total += loss`, `losses.append(loss)`, `avg = avg + loss`
    accumulator: str
    value: str  # the accumulated name ("" for an expression: `total += loss * bs`)
    loops: Loops
    added: cst.BaseExpression | None = None  # what is added: `loss`, `loss * bs`


@dataclass
class StatelessCall:
    """`out, h = gru(x)`: a torch recurrent module called without the state it returns (left
    out, or None), so it starts from zeros, while `h` is bound to its new state."""

    call: cst.Call
    states: tuple[str, ...]  # the names bound to the returned state
    # The value each of them held right before the call, joined over all paths and passes.
    before: dict[str, Value]
    loops: Loops
    no_grad: bool


@dataclass
class OptimizerCall:
    node: cst.Call
    receiver: str
    method: str  # "zero_grad" or "step"
    loops: Loops


@dataclass
class UnitEvents:
    unit: cst.CSTNode
    class_name: str | None = None  # the class a method unit belongs to
    recurrent_calls: list[RecurrentCall] = field(default_factory=list)
    reads: dict[tuple[int, str], StateRead] = field(default_factory=dict)
    backwards: list[BackwardSite] = field(default_factory=list)
    discarded_detaches: list[DiscardedDetach] = field(default_factory=list)
    inplace_view_detaches: list[InplaceDetachOnView] = field(default_factory=list)
    data_cuts: list[DataCut] = field(default_factory=list)
    alias_cuts: list[AliasCut] = field(default_factory=list)
    # Recurrent calls whose output some backward ran through.
    consumed: set[int] = field(default_factory=set)
    accumulations: list[Accumulation] = field(default_factory=list)
    optimizer_calls: list[OptimizerCall] = field(default_factory=list)
    stateless_calls: list[StatelessCall] = field(default_factory=list)
    # Every For/While of the unit -> the loops enclosing it (outermost first).
    loop_parents: dict[cst.CSTNode, Loops] = field(default_factory=dict)
    # Loops whose body holds a backward (directly or nested).
    loops_with_backward: set[cst.CSTNode] = field(default_factory=set)
    # `self.*` states a method keeps on its object from one call to the next (attributes.py).
    carried_between_calls: tuple[str, ...] = ()
    # (call, state): calls whose body re-initialises a state kept on an object (`model.reset()`).
    attribute_resets: set[tuple[int, str]] = field(default_factory=set)
    _seen: set[tuple[str, int]] = field(default_factory=set, repr=False)

    def add(self, kind: str, node: cst.CSTNode, item: object) -> None:
        """Record an event once, although loop bodies are interpreted several times."""
        key = (kind, id(node))
        if key not in self._seen:
            self._seen.add(key)
            getattr(self, kind).append(item)

    def reads_of(self, call: RecurrentCall) -> list[StateRead]:
        return [
            self.reads[(id(call.call), name)]
            for name in call.states
            if (id(call.call), name) in self.reads
        ]
