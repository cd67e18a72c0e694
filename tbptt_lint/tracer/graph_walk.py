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
"""

from __future__ import annotations

import sys
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tbptt_lint.tracer.records import GraphNode, GraphSnapshot

# (first step, number of steps) of a tagged node, or None for glue.
StepTag = tuple[int, int]
TagResolver = Callable[[Any], "StepTag | None"]  # autograd Node -> its step, if tagged

ACCUMULATE_GRAD = "torch::autograd::AccumulateGrad"
# Nodes whose inside the walk cannot see: the steps they cover are hidden from the horizon.
OPAQUE_MARKERS = ("CompiledFunctionBackward", "CheckpointFunctionBackward")
# How many nodes the walk visits. On torch 2.13 (CPU), freeing a back-propagated graph whose
# nodes Python has visited recurses once per node: with the default 8 MiB main-thread stack,
# a graph of 45k nodes (a plain chain) or 120k (8000 LSTMCell steps) segfaulted when the user
# dropped it, while 30k was safe (benchmarks/deep_graph_free.py reproduces it). torch 2.11 on
# an H100 machine freed 120k visited nodes fine. The main thread's stack grows up to the soft
# RLIMIT_STACK, so the limit scales with it: `ulimit -s unlimited` (or raising the soft limit
# with `resource.setrlimit` at program start) lifts it. Past the limit the horizon is a lower
# bound.
MAX_WALK_NODES = 30_000
MEASURED_STACK_BYTES = 8 << 20  # the stack limit MAX_WALK_NODES was measured safe under
FIRST_AFFECTED_TORCH = (2, 12)


def default_walk_limit() -> int:
    """The most nodes a walk may visit without risking the crash above."""
    import torch

    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version < FIRST_AFFECTED_TORCH:
        return sys.maxsize
    try:
        import resource
    except ImportError:  # not on Linux/macOS: nothing to read, stay safe
        return MAX_WALK_NODES
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    return max(MAX_WALK_NODES, MAX_WALK_NODES * soft // MEASURED_STACK_BYTES)


_NEG = -1
_NO_TAG = -1  # key of "no step seen on this path"

# Attribute names of saved tensors, per node class (dir() is slow; classes are few).
_saved_attrs_cache: dict[type, tuple[str, ...]] = {}


@dataclass
class FreedSaved:
    """A saved tensor that could not be read: freed by an earlier backward, or bumped in place."""

    node: str
    step: int | None  # nearest step tag at or above the node, if any
    reason: str  # "freed" or "inplace"


@dataclass
class WalkResult:
    node_count: int = 0
    horizon: int = 0
    reached: set[int] = field(default_factory=set)
    links: set[tuple[int, int]] = field(default_factory=set)  # (older step, newer step)
    opaque: list[str] = field(default_factory=list)
    saved_bytes: int = 0
    saved_bytes_known: bool = True
    node_limited: bool = False  # the walk stopped at MAX_WALK_NODES: horizon is a lower bound
    # Non-parameter leaves below a step that already held a .grad: (shape, step above it).
    stale_leaves: list[tuple[tuple[int, ...], int | None]] = field(default_factory=list)
    # Weak references to the leaves of the k1/k2 recipe (non-parameter leaves below a step).
    state_leaves: list[weakref.ref] = field(default_factory=list)
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


def _merge_pairs(children: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Best (value, first-step key) over children, and the best whose key differs from it."""
    best_v, best_k, sec_v, sec_k = 0, _NO_TAG, _NEG, _NO_TAG
    for bv, bk, sv, sk in children:
        for v, k in ((bv, bk), (sv, sk)):
            if v < 0:
                continue
            if v > best_v or (v == best_v and best_k == _NO_TAG and k != _NO_TAG):
                if k != best_k:
                    sec_v, sec_k = best_v, best_k
                best_v, best_k = v, k
            elif k != best_k and v > sec_v:
                sec_v, sec_k = v, k
    return best_v, best_k, sec_v, sec_k


def walk_graph(
    roots: Sequence[Any],
    resolve_tag: TagResolver,
    *,
    measure_saved: bool = True,
    snapshot_limit: int = 5000,
    max_nodes: int | None = None,
    param_names: Callable[[Any], str | None] | None = None,
) -> WalkResult:
    """Walk every node reachable from `roots` (autograd Nodes) once and measure the horizon."""
    import torch

    if max_nodes is None:
        max_nodes = default_walk_limit()
    result = WalkResult()
    index: dict[int, int] = {}
    nodes: list[Any] = []
    children: list[list[int]] = []
    tags: list[StepTag | None] = []
    names: list[str] = []

    queue: deque[Any] = deque()
    for root in roots:
        if root is not None and id(root) not in index:
            index[id(root)] = len(nodes)
            nodes.append(root)
            queue.append(root)
    root_count = len(nodes)

    # Discovery, breadth first. Children are resolved to indices as nodes are found.
    pos = 0
    while pos < len(nodes):
        node = nodes[pos]
        pos += 1
        names.append(node.name())
        # The resolver reads `metadata` of tagged nodes only (reading creates it).
        tags.append(resolve_tag(node))
        kids: list[int] = []
        if len(nodes) >= max_nodes:
            # Frontier node: counted, not expanded (see MAX_WALK_NODES).
            result.node_limited = True
            children.append(kids)
            continue
        for child, _ in node.next_functions:
            if child is None:
                continue
            ci = index.get(id(child))
            if ci is None:
                ci = len(nodes)
                index[id(child)] = ci
                nodes.append(child)
            kids.append(ci)
        children.append(kids)
    n = len(nodes)
    result.node_count = n

    # Topological order, parents first (Kahn), then DP over it in reverse.
    indegree = [0] * n
    for kids in children:
        for c in kids:
            indegree[c] += 1
    order: list[int] = [i for i in range(n) if indegree[i] == 0]
    head = 0
    while head < len(order):
        i = order[head]
        head += 1
        for c in children[i]:
            indegree[c] -= 1
            if indegree[c] == 0:
                order.append(c)

    # under_step[i]: some tagged node sits above i (so i belongs to a step's computation).
    under_step = [False] * n
    step_above: list[int | None] = [None] * n
    for i in order:
        tag = tags[i]
        mine = tag[0] if tag is not None else step_above[i]
        flag = under_step[i] or tag is not None
        for c in children[i]:
            if flag and not under_step[c]:
                under_step[c] = True
            if mine is not None and (step_above[c] is None or mine > step_above[c]):
                step_above[c] = mine

    best: list[tuple[int, int, int, int]] = [(0, _NO_TAG, _NEG, _NO_TAG)] * n
    links = result.links
    reached = result.reached
    for i in reversed(order):
        merged = _merge_pairs([best[c] for c in children[i]]) if children[i] else best[i]
        tag = tags[i]
        if tag is None:
            best[i] = merged
            continue
        start, count = tag
        bv, bk, sv, sk = merged
        # Continue from this step: a path whose first step is this same step adds nothing new.
        tail = max(bv - count, sv, 0) if bk == start else bv
        best[i] = (count + tail, start, _NEG, _NO_TAG)
        reached.update(range(start, start + count))
        for k in (bk, sk):
            if k not in (_NO_TAG, start) and k < start:
                links.add((k, start))
        if tail == 0:
            result.cut_node_ids.add(id(nodes[i]))
        result.node_steps[id(nodes[i])] = start
    result.horizon = max((best[i][0] for i in range(root_count)), default=0)

    # Per-node facts: opaque regions, leaves, saved tensors.
    seen_storages: set[int] = set()
    for i in range(n):
        name = names[i]
        node = nodes[i]
        if any(marker in name for marker in OPAQUE_MARKERS):
            result.opaque.append(name)
        if name == ACCUMULATE_GRAD:
            var = getattr(node, "variable", None)
            if var is not None and under_step[i] and not isinstance(var, torch.nn.Parameter):
                result.state_leaves.append(weakref.ref(var))
                result.cut_node_ids.add(id(node))
                if var.grad is not None:
                    result.stale_leaves.append((tuple(var.shape), step_above[i]))
            continue
        if measure_saved:
            _measure_saved(node, result, seen_storages, step_above[i])

    if n <= snapshot_limit:
        result.snapshot = _snapshot(names, tags, children, nodes, root_count, param_names)
    else:
        result.snapshot = GraphSnapshot(truncated=True)
    return result


def _measure_saved(node: Any, result: WalkResult, seen: set[int], step: int | None) -> None:
    """Add the bytes of `node`'s saved tensors; note the ones already freed or bumped in place."""
    import torch

    for attr in _saved_attrs(node):
        try:
            value = getattr(node, attr)
        except RuntimeError as exc:
            text = str(exc)
            if "backward through the graph a second time" in text or "freed" in text:
                result.unreadable.append(FreedSaved(node.name(), step, "freed"))
            elif "inplace operation" in text:
                result.unreadable.append(FreedSaved(node.name(), step, "inplace"))
            return
        except Exception:  # noqa: BLE001 - an odd attribute must never break the user's run
            continue
        values = value if isinstance(value, (tuple, list)) else (value,)
        for t in values:
            if isinstance(t, torch.Tensor):
                try:
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key not in seen:
                        seen.add(key)
                        result.saved_bytes += storage.nbytes()
                except Exception:  # noqa: BLE001 - sparse or meta tensors have no storage
                    continue


def _snapshot(
    names: list[str],
    tags: list[StepTag | None],
    children: list[list[int]],
    nodes: list[Any],
    root_count: int,
    param_names: Callable[[Any], str | None] | None,
) -> GraphSnapshot:
    import torch

    snap = GraphSnapshot()
    for i, name in enumerate(names):
        tag = tags[i]
        label, kind = name, "op"
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
