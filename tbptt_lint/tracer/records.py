"""What the tracer records about each backward call. Plain data: no torch objects are held,
so that old autograd graphs can be freed."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

# What a node of a graph snapshot is (the `kind` of GraphNode, as written to JSON).
NodeKind = Literal["op", "param", "leaf", "opaque", "root"]
# How a backward call was made: `.backward()` / `autograd.backward`, or `autograd.grad`.
BackwardKind = Literal["backward", "grad"]


@dataclass(slots=True)
class StepRecord:
    """One time step: one cell call, or one of the T steps of a sequence module call."""

    index: int  # global, 0-based, in the order steps were taken
    module: str  # qualified module name ("rnn", "model.cell") or class name
    grad_enabled: bool  # False for steps taken under no_grad / inference_mode


@dataclass(slots=True)
class GraphNode:
    id: int  # stable within one snapshot
    label: str  # autograd node name, e.g. "AddmmBackward0", or "param: weight_ih"
    step: int | None  # global step index the node belongs to, None for glue
    kind: NodeKind


@dataclass
class GraphSnapshot:
    """The structure of one backward's graph, copied while the graph was alive.

    `edges` go from a node to the nodes its gradient flows into (grad_fn -> next_functions).
    `dot_source` holds torchviz make_dot output for graphs small enough to draw node by node.
    """

    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    dot_source: str | None = None
    truncated: bool = False  # True when only the condensed view was kept


class BackwardCall:
    """One root backward call: where it happened, and what its gradient reached.

    A long run keeps one of these per backward, so the step lists are stored as machine
    integers (`array`), 8 bytes a number instead of a tuple of int objects; the attributes
    still read and assign as tuples."""

    __slots__ = (
        "_cut",
        "_links",
        "_reached",
        "continuations",
        "graph_nodes",
        "horizon",
        "index",
        "kind",
        "notes",
        "opaque",
        "saved_bytes",
        "snapshot",
        "step",
        "stride",
        "walk_limited",
    )

    def __init__(
        self,
        index: int,  # 0-based position among root backward calls
        step: int,  # time steps consumed before this backward (cumulative)
        stride: int,  # steps since the previous root backward (or since the start)
        horizon: int,  # longest chain of steps linked through carried state it flows along
        graph_nodes: int,
        saved_bytes: int,
        kind: BackwardKind = "backward",
        reached_steps: Iterable[int] = (),  # global step indices whose nodes it reaches
        # (from_step, to_step) pairs: the gradient flows from step `to_step` back into
        # `from_step` through carried state. Used by the condensed graph.
        state_links: Iterable[tuple[int, int]] = (),
        continuations: int = 0,  # chained `state.backward(gradient)` calls folded into it
        opaque: tuple[str, ...] = (),  # names of nodes the walk could not see into
        snapshot: GraphSnapshot | None = None,
        notes: list[str] | None = None,
        # The walk stopped at its node limit: the true horizon may be longer.
        walk_limited: bool = False,
        # Reached steps where the gradient stops: no carried state from an earlier reached
        # step flowed into them (state cut, made anew, or the first step). None: derived
        # from `state_links` alone, for records that predate it (a sequence module's inner
        # steps then read as cut).
        cut_steps: Iterable[int] | None = None,
    ) -> None:
        self.index = index
        self.step = step
        self.stride = stride
        self.horizon = horizon
        self.graph_nodes = graph_nodes
        self.saved_bytes = saved_bytes
        self.kind = kind
        self.reached_steps = reached_steps
        self.state_links = state_links
        if cut_steps is None:
            linked = {newer for _, newer in self.state_links}
            cut_steps = (s for s in self.reached_steps if s not in linked)
        self.cut_steps = cut_steps
        self.continuations = continuations
        self.opaque = opaque
        self.snapshot = snapshot
        self.notes = [] if notes is None else notes
        self.walk_limited = walk_limited

    @property
    def reached_steps(self) -> tuple[int, ...]:
        return tuple(self._reached)

    @reached_steps.setter
    def reached_steps(self, steps: Iterable[int]) -> None:
        self._reached = array("q", steps)

    @property
    def state_links(self) -> tuple[tuple[int, int], ...]:
        flat = self._links
        return tuple(zip(flat[0::2], flat[1::2], strict=True))

    @state_links.setter
    def state_links(self, links: Iterable[tuple[int, int]]) -> None:
        self._links = array("q", (step for link in links for step in link))

    @property
    def cut_steps(self) -> tuple[int, ...]:
        return tuple(self._cut)

    @cut_steps.setter
    def cut_steps(self, steps: Iterable[int]) -> None:
        self._cut = array("q", sorted(set(steps)))

    def _fields(self) -> tuple[object, ...]:
        return (
            self.index,
            self.step,
            self.stride,
            self.horizon,
            self.graph_nodes,
            self.saved_bytes,
            self.kind,
            self.reached_steps,
            self.state_links,
            self.cut_steps,
            self.continuations,
            self.opaque,
            self.snapshot,
            self.notes,
            self.walk_limited,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BackwardCall):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass

    def __repr__(self) -> str:
        return (
            f"BackwardCall(index={self.index}, step={self.step}, stride={self.stride}, "
            f"horizon={self.horizon}, graph_nodes={self.graph_nodes}, "
            f"saved_bytes={self.saved_bytes}, kind={self.kind!r})"
        )


@dataclass
class TraceSummary:
    """Everything the reports and pictures need, detached from the live tracer."""

    calls: list[BackwardCall] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # plain-words explanations
    expected_k1: int | None = None
    expected_k2: int | None = None
    verdict: str | None = None  # "ok", "failed: ...", or None when nothing was asserted
