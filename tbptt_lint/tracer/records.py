"""What the tracer records about each backward call. Plain data: no torch objects are held,
so that old autograd graphs can be freed."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    kind: str  # "op", "param", "leaf", "opaque", "root"


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


@dataclass(slots=True)
class BackwardCall:
    index: int  # 0-based position among root backward calls
    step: int  # time steps consumed before this backward (cumulative)
    stride: int  # steps since the previous root backward (or since the start)
    horizon: int  # longest chain of steps linked through carried state the gradient flows along
    graph_nodes: int
    saved_bytes: int
    kind: str = "backward"  # "backward" or "grad"
    reached_steps: tuple[int, ...] = ()  # global step indices whose nodes the gradient reaches
    # (from_step, to_step) pairs: the gradient flows from step `to_step` back into `from_step`
    # through carried state. Used by the condensed graph.
    state_links: tuple[tuple[int, int], ...] = ()
    continuations: int = 0  # chained `state.backward(gradient)` calls folded into this one
    opaque: tuple[str, ...] = ()  # names of nodes the walk could not see into
    snapshot: GraphSnapshot | None = None
    notes: list[str] = field(default_factory=list)
    # The walk stopped at its node limit: the true horizon may be longer.
    walk_limited: bool = False


@dataclass
class TraceSummary:
    """Everything the reports and pictures need, detached from the live tracer."""

    calls: list[BackwardCall] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # plain-words explanations
    expected_k1: int | None = None
    expected_k2: int | None = None
    verdict: str | None = None  # "ok", "failed: ...", or None when nothing was asserted
