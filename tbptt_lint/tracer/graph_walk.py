"""One structural walk over a live autograd graph, before the engine runs and frees it.

The horizon is a longest-path problem over the graph's DAG: the longest chain of *distinct*
time steps along one path from a root towards the leaves. Gradient flows from newer nodes to
older ones, so along any path the step tags never increase and all nodes of one step sit
together; counting distinct steps therefore only needs "was the step I came from the same
as this one". Each node keeps the best two path values whose first step differ (the classic
top-two-with-distinct-keys trick), which is enough to answer that question for its parents.

Everything is iterative (graphs of 35k+ nodes; `make_dot` hits RecursionError near 1000
steps) and linear in nodes plus edges. No node object outlives the walk: tags live in
`Node.metadata`, and the result holds only plain data.

Cost: each Node is touched in one breadth-first pass (tag, `next_functions` read once, saved
tensors; what its class says, such as leaf or opaque, is cached per class, and names are
read only for the small graphs a snapshot keeps); the topological order and the longest-path
DP then run over lists of ints, and the DP shares one state tuple along chains instead of
merging anew at every node. Saved tensors are read only through the attributes that can hold
one (not the sizes, strides and scalars that most `_saved_*` attributes are).
tests/tracer/test_graph_walk_equivalence.py checks every result against a from-scratch
reference.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import GetSetDescriptorType
from typing import TYPE_CHECKING, Any

from tbptt_lint.tracer.records import GraphNode, GraphSnapshot, NodeKind

if TYPE_CHECKING:
    from tbptt_lint.tracer.steps import SequenceBits

# (first step, number of steps) of a tagged node, or None for glue. first >= 0, number >= 1:
# the DP below relies on a path through a step being worth at least 1.
StepTag = tuple[int, int]
TagResolver = Callable[[Any], "StepTag | None"]  # autograd Node -> its step, if tagged

ACCUMULATE_GRAD = "torch::autograd::AccumulateGrad"
# Nodes whose inside the walk cannot see: the steps they cover are hidden from the horizon.
OPAQUE_MARKERS = ("CompiledFunctionBackward", "CheckpointFunctionBackward")
_NEG = -1
_NO_TAG = -1  # key of "no step seen on this path"
# DP state of a node: (best value, its first-step key, best value whose key differs, its key).
_EMPTY: tuple[int, int, int, int] = (0, _NO_TAG, _NEG, _NO_TAG)
_NO_KIDS: tuple[int, ...] = ()

# What a node's name says about it, per name (names are few: one per op).
_OP, _OPAQUE, _LEAF = 0, 1, 2
_name_kinds: dict[str, int] = {}
# Per node class: its kind, or None where the class is shared by nodes of different names
# (torch's generic wrapper for unregistered C++ nodes).
_type_kinds: dict[type, int | None] = {}

# Attribute names of saved tensors, per node class (dir() is slow; classes are few).
_saved_attrs_cache: dict[type, tuple[str, ...]] = {}
# The ones that can hold a tensor. A generated node class's `_saved_*` attributes are
# getters with one C++ type each: one seen holding an int, a dtype or a tuple of ints never
# holds a tensor, and never raises either (only tensor getters check for freed buffers), so
# skipping it changes nothing but the time.
_tensor_attrs_cache: dict[type, tuple[str, ...]] = {}


@dataclass
class FreedSaved:
    """A saved tensor that could not be read: freed by an earlier backward, or bumped in place."""

    node: str
    step: int | None  # first step of the node's own tag, else of the nearest one above it
    reason: str  # "freed" or "inplace"
    steps: int = 1  # how many steps that tag covers (T for a sequence module's call)


@dataclass
class WalkResult:
    node_count: int = 0
    horizon: int = 0
    reached: set[int] = field(default_factory=set)
    links: set[tuple[int, int]] = field(default_factory=set)  # (older step, newer step)
    # Reached steps no carried state from an earlier reached step flowed into: a state cut or
    # made anew, or the first step. The steps after the first of one sequence-module call
    # (nn.LSTM fed T steps) are linked through that module's own recurrence.
    cut_steps: set[int] = field(default_factory=set)
    opaque: list[str] = field(default_factory=list)
    saved_bytes: int = 0
    saved_bytes_known: bool = True
    node_limited: bool = False  # the walk stopped at `max_nodes`: horizon is a lower bound
    # Non-parameter leaves below a step that already held a .grad: (shape, step above it).
    stale_leaves: list[tuple[tuple[int, ...], int | None]] = field(default_factory=list)
    # Weak references to the leaves of the k1/k2 recipe (non-parameter leaves below a step).
    state_leaves: list[weakref.ref[Any]] = field(default_factory=list)
    unreadable: list[FreedSaved] = field(default_factory=list)
    snapshot: GraphSnapshot | None = None
    # For torchviz: id(grad_fn) -> step, and ids of nodes at a truncation boundary.
    node_steps: dict[int, int] = field(default_factory=dict)
    cut_node_ids: set[int] = field(default_factory=set)


def _saved_attrs(node: Any) -> tuple[str, ...]:
    cls = type(node)
    attrs = _saved_attrs_cache.get(cls)
    if attrs is None:
        attrs = tuple(a for a in dir(node) if a.startswith("_saved_"))
        _saved_attrs_cache[cls] = attrs
    return attrs


def _never_tensor(value: Any) -> bool:
    """True for a value no tensor getter returns: not a tensor, None, or tensors in a tuple."""
    import torch

    if value is None or isinstance(value, torch.Tensor):
        return False
    if isinstance(value, (tuple, list)):
        # Empty, or all None: could be an optional tensor list. Anything else: ints, scalars.
        return any(v is not None and not isinstance(v, torch.Tensor) for v in value)
    return True


def _tensor_attrs(node: Any) -> tuple[str, ...]:
    """`_saved_attrs(node)` less the class-level getters that, read once, hold no tensor."""
    cls = type(node)
    keep = []
    for attr in _saved_attrs(node):
        if isinstance(getattr(cls, attr, None), GetSetDescriptorType):
            try:
                if _never_tensor(getattr(node, attr)):
                    continue
            except Exception:  # noqa: BLE001 - freed or odd: keep it, the walk reads it again
                pass
        keep.append(attr)
    attrs = tuple(keep)
    _tensor_attrs_cache[cls] = attrs
    return attrs


def _name_kind(name: str) -> int:
    kind = _OP
    if any(marker in name for marker in OPAQUE_MARKERS):
        kind = _OPAQUE
    elif name == ACCUMULATE_GRAD:
        kind = _LEAF
    if len(_name_kinds) > 100_000:  # generated names without end: stay bounded
        _name_kinds.clear()
    _name_kinds[name] = kind
    return kind


def _node_kind(node: Any) -> int:
    cls = type(node)
    name = node.name()
    kind = _name_kinds.get(name)
    if kind is None:
        kind = _name_kind(name)
    if cls not in _type_kinds:
        _type_kinds[cls] = kind if name.endswith(cls.__name__) else None
    return kind


def _storage_bytes(t: Any, seen: set[int]) -> int:
    """Bytes of `t`'s storage, unless a storage at the same address was counted already."""
    try:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        nbytes: int = storage.nbytes()
        return nbytes
    except Exception:  # noqa: BLE001 - sparse or meta tensors have no storage
        return 0


def _unreadable_reason(exc: RuntimeError) -> str | None:
    text = str(exc)
    if "backward through the graph a second time" in text or "freed" in text:
        return "freed"
    if "inplace operation" in text:
        return "inplace"
    return None


def walk_graph(
    roots: Sequence[Any],
    resolve_tag: TagResolver,
    *,
    measure_saved: bool = True,
    snapshot_limit: int = 5000,
    max_nodes: int | None = None,
    param_names: Callable[[Any], str | None] | None = None,
    timings: dict[str, float] | None = None,
    keep_alive: list[Any] | None = None,
    tagged: SequenceBits | None = None,
) -> WalkResult:
    """Walk every node reachable from `roots` (autograd Nodes) once and measure the horizon.

    Tags from `resolve_tag` are (first step >= 0, number of steps >= 1). `timings`, when
    given, gets the seconds spent in each phase added to it (for benchmarks). `tagged`, when
    given, is a `steps.SequenceBits` of the sequence numbers `resolve_tag` may tag: nodes
    outside it are not asked (most nodes are not a step's output; asking costs a call each).

    `keep_alive`, when given, receives the walked node objects, parents before children. The
    ids in `node_steps` and `cut_node_ids` name those Python objects, and on some torch
    versions (2.11) a node's Python object is made anew each time it is reached once the old
    one is gone, so whoever matches ids against another traversal (torchviz's `make_dot`) must
    hold them meanwhile. Holding them matters more on torch 2.13: see node_keeper.
    """
    clock = time.perf_counter
    started = clock()
    result = WalkResult()
    graph = _discover(
        roots,
        resolve_tag,
        result,
        measure_saved,
        sys.maxsize if max_nodes is None else max_nodes,
        tagged,
    )
    discovered = clock()
    order, above = _order(graph)
    ordered = clock()
    _longest_paths(graph, order, result)
    measured = clock()
    _leaves_and_unreadable(graph, above, result)
    n = len(graph.nodes)
    if n <= snapshot_limit:
        names = [node.name() for node in graph.nodes]
        result.snapshot = _snapshot(
            names, graph.tags, graph.children, graph.nodes, graph.root_count, param_names
        )
    else:
        result.snapshot = GraphSnapshot(truncated=True)
    if timings is not None:
        finished = clock()
        for phase, took in (
            ("discover", discovered - started),
            ("order", ordered - discovered),
            ("horizon", measured - ordered),
            ("finish", finished - measured),
        ):
            timings[phase] = timings.get(phase, 0.0) + took
    if keep_alive is not None:
        nodes = graph.nodes
        keep_alive.extend([nodes[j] for j in order])  # parents first: see node_keeper
    return result


@dataclass
class _Graph:
    """What the one pass over the Node objects read: node i is `nodes[i]` (the roots first),
    with its tag, its children (as indices) and its in-degree."""

    nodes: list[Any]
    root_count: int
    tags: list[StepTag | None]
    children: list[Sequence[int]]
    indegree: list[int]
    leaves: list[int]  # AccumulateGrad nodes
    unreadable: list[tuple[FreedSaved, int]]


def _discover(  # noqa: C901 - the walk's hot loop, inline on purpose (one call per node costs)
    roots: Sequence[Any],
    resolve_tag: TagResolver,
    result: WalkResult,
    measure_saved: bool,
    max_nodes: int,
    tagged: SequenceBits | None,
) -> _Graph:
    """The breadth-first pass (the hot loop: kept inline). Sets `result`'s node count, limit,
    saved bytes and opaque nodes."""
    import torch

    # Node -> its index. Nodes hash by identity, and `nodes` keeps each one alive meanwhile.
    index: dict[Any, int] = {}
    nodes: list[Any] = []  # the queue of the breadth-first pass; node i is nodes[i]
    indegree: list[int] = []
    for root in roots:
        if root is not None and root not in index:
            index[root] = len(nodes)
            nodes.append(root)
            indegree.append(0)
    root_count = len(nodes)

    # One breadth-first pass reads everything the walk needs from each Node, once: tag,
    # children (as indices; `next_functions` builds a new tuple on every access), in-degree,
    # kind, saved tensors. Later passes only see lists of ints.
    tags: list[StepTag | None] = []
    children: list[Sequence[int]] = []
    leaves: list[int] = []  # AccumulateGrad nodes
    unreadable: list[tuple[FreedSaved, int]] = []
    opaque = result.opaque
    index_get = index.get
    nodes_append = nodes.append
    indegree_append = indegree.append
    tags_append = tags.append
    children_append = children.append
    kinds_get = _type_kinds.get
    attrs_get = _tensor_attrs_cache.get
    tensor_type = torch.Tensor
    seen: set[int] = set()  # storage data pointers counted: each storage counts once
    saved = 0

    limited = False
    found = len(nodes)  # nodes found so far: the next one's index
    if tagged is not None:
        tag_bits, tag_large, largest = tagged.bits, tagged.large, tagged.LARGEST_BIT
    i = -1
    for node in nodes:  # grows while it is walked
        i += 1
        if tagged is None:
            tags_append(resolve_tag(node))
        else:  # SequenceBits.__contains__, inline
            seq = node._sequence_nr()
            if 0 <= seq < largest:
                byte = seq >> 3
                hit = byte < len(tag_bits) and tag_bits[byte] >> (seq & 7) & 1
            else:
                hit = seq in tag_large
            tags_append(resolve_tag(node) if hit else None)
        kind = kinds_get(type(node))
        if kind is None:
            kind = _node_kind(node)
        if kind == _LEAF:
            leaves.append(i)
        else:
            if kind == _OPAQUE and tags[i] is None:
                # A tagged one is a step's own node (a compiled cell): nothing hidden.
                opaque.append(node.name())
            if measure_saved:
                # Reading an attribute may run a saved-tensor unpack hook: only here.
                attrs = attrs_get(type(node))
                if attrs is None:
                    attrs = _tensor_attrs(node)
                for attr in attrs:
                    try:
                        value = getattr(node, attr)
                    except RuntimeError as exc:
                        reason = _unreadable_reason(exc)
                        if reason is not None:
                            unreadable.append((FreedSaved(node.name(), None, reason), i))
                        break
                    except Exception:  # noqa: BLE001 - an odd attribute must never break a run
                        continue
                    if value is None:
                        continue
                    if isinstance(value, tensor_type):
                        try:
                            storage = value.untyped_storage()
                            key = storage.data_ptr()
                            if key not in seen:
                                seen.add(key)
                                saved += storage.nbytes()
                        except Exception:  # noqa: BLE001 - sparse or meta tensors have no storage
                            pass
                    elif isinstance(value, (tuple, list)):
                        for t in value:
                            if isinstance(t, tensor_type):
                                saved += _storage_bytes(t, seen)
        if found >= max_nodes:
            # Frontier node: counted, not expanded (the caller's `max_nodes`).
            limited = True
            children_append(_NO_KIDS)
            continue
        own_kids: list[int] = []
        for child, _ in node.next_functions:
            if child is None:
                continue
            ci = index_get(child)
            if ci is None:
                index[child] = found
                own_kids.append(found)
                nodes_append(child)
                indegree_append(1)
                found += 1
            else:
                indegree[ci] += 1
                own_kids.append(ci)
        children_append(own_kids)
    result.node_count = len(nodes)
    result.node_limited = limited
    result.saved_bytes = saved
    return _Graph(nodes, root_count, tags, children, indegree, leaves, unreadable)


def _order(graph: _Graph) -> tuple[list[int], list[int]]:
    """Topological order, parents first, and for each node the step of the nearest tagged
    nodes above it (-1: none). Uses up `graph.indegree`."""
    children, tags, indegree = graph.children, graph.tags, graph.indegree
    n = len(children)
    # Kahn. The same pass carries down, for each node, the step of the nearest tagged nodes
    # above it (the largest; -1: none above).
    order = [j for j in range(n) if not indegree[j]]
    order_append = order.append
    above = [-1] * n
    for j in order:  # grows while it is walked
        kids = children[j]
        if not kids:
            continue
        tag = tags[j]
        mine = above[j] if tag is None else tag[0]
        for c in kids:
            if mine > above[c]:
                above[c] = mine
            left = indegree[c] - 1
            indegree[c] = left
            if not left:
                order_append(c)
    return order, above


def _longest_paths(  # noqa: C901 - the second hot loop, inline on purpose
    graph: _Graph, order: list[int], result: WalkResult
) -> None:
    """The horizon, reached steps, links, cut nodes and node steps, into `result`."""
    children, tags, nodes, root_count = graph.children, graph.tags, graph.nodes, graph.root_count
    n = len(children)
    # Longest path over distinct steps, children first. A node's state is the best path
    # value with its first step, and the best one whose first step differs (or _NEG/_NO_TAG).
    # Children merge in `next_functions` order with strict comparisons: on a tie the earlier
    # child's step is kept, which decides which steps `links` names. States are shared
    # tuples: a node with one child reuses its child's state, and merging a state into
    # itself (children that reach the same subgraph) changes nothing, so it is skipped.
    best: list[tuple[int, int, int, int]] = [_EMPTY] * n
    reached = result.reached
    links = result.links
    inner: set[int] = set()  # steps after the first of a multi-step tag (a sequence call)
    cut_ids = result.cut_node_ids
    node_steps = result.node_steps
    empty = _EMPTY
    for j in reversed(order):
        kids = children[j]
        if kids:
            state = best[kids[0]]
            if len(kids) > 1:
                for c in kids:
                    other = best[c]
                    if other is state or other is empty:
                        continue
                    if state is empty:
                        state = other
                        continue
                    ov, ok, osv, osk = other
                    bv, bk, sv, sk = state
                    if ov <= sv:
                        continue  # nothing in `other` beats the second best
                    if ov > bv:
                        if ok != bk:
                            sv, sk = bv, bk
                        bv, bk = ov, ok
                    elif ok != bk:
                        sv, sk = ov, ok
                    if osv > sv and osk != bk:  # osv <= ov <= bv: never a new best
                        sv, sk = osv, osk
                    state = (bv, bk, sv, sk)
        else:
            state = empty
        tag = tags[j]
        if tag is None:
            best[j] = state
            continue
        start, steps = tag
        bv, bk, sv, sk = state
        # Continue from this step: a path whose first step is this same step adds nothing new.
        if bk == start:
            tail = bv - steps
            if sv > tail:
                tail = sv
            if tail < 0:
                tail = 0
        else:
            tail = bv
        best[j] = (steps + tail, start, _NEG, _NO_TAG)
        reached.update(range(start, start + steps))
        if steps > 1:
            inner.update(range(start + 1, start + steps))
        if bk != _NO_TAG and bk < start:
            links.add((bk, start))
        if sk != _NO_TAG and sk < start:
            links.add((sk, start))
        node_id = id(nodes[j])
        if tail == 0:
            cut_ids.add(node_id)
        node_steps[node_id] = start
    result.horizon = max((best[j][0] for j in range(root_count)), default=0)
    result.cut_steps = reached - inner - {newer for _, newer in links}


def _leaves_and_unreadable(graph: _Graph, above: list[int], result: WalkResult) -> None:
    import torch

    nodes, tags = graph.nodes, graph.tags
    cut_ids = result.cut_node_ids
    # Leaves below a step (the k1/k2 recipe's state), and where unreadable tensors sit.
    parameter = torch.nn.Parameter
    for j in graph.leaves:
        var = getattr(nodes[j], "variable", None)
        if var is not None and above[j] >= 0 and not isinstance(var, parameter):
            result.state_leaves.append(weakref.ref(var))
            cut_ids.add(id(nodes[j]))
            if var.grad is not None:
                result.stale_leaves.append((tuple(var.shape), above[j]))
    if graph.unreadable:
        # Rare (the run is about to raise): find each tag's span only now.
        spans = {tag[0]: tag[1] for tag in tags if tag is not None}
        for freed, j in graph.unreadable:
            own = tags[j]
            first = own[0] if own is not None else above[j]
            if first >= 0:
                freed.step, freed.steps = first, spans.get(first, 1)
            result.unreadable.append(freed)


def _snapshot(
    names: list[str],
    tags: list[StepTag | None],
    children: list[Sequence[int]],
    nodes: list[Any],
    root_count: int,
    param_names: Callable[[Any], str | None] | None,
) -> GraphSnapshot:
    import torch

    snap = GraphSnapshot()
    for i, name in enumerate(names):
        tag = tags[i]
        label = name
        kind: NodeKind = "op"
        if i < root_count:
            kind = "root"
        if name == ACCUMULATE_GRAD:
            var = getattr(nodes[i], "variable", None)
            if isinstance(var, torch.nn.Parameter):
                kind = "param"
                pname = param_names(var) if param_names is not None else None
                label = f"param: {pname}" if pname else f"param {tuple(var.shape)}"
            else:
                kind = "leaf"
                label = f"leaf {tuple(var.shape)}" if var is not None else "leaf"
        elif any(marker in name for marker in OPAQUE_MARKERS):
            kind = "opaque"
        snap.nodes.append(GraphNode(i, label, tag[0] if tag else None, kind))
        for c in children[i]:
            snap.edges.append((i, c))
    return snap
