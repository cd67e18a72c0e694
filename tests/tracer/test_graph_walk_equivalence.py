"""The graph walk against a from-scratch reference, on live autograd graphs.

Each backward inside `trace` walks the graph once. A recorder wraps that walk and, on the same
live graph and with the same tag resolver, recomputes every result with plain code written
for clarity only: a breadth-first node list, a memoised longest path over (node, last step
seen on the path), the nearest tagged nodes above and below each node, and saved tensors read
through every `_saved_*` attribute of every node. The walk's answers must match exactly.
"""

from __future__ import annotations

import random
import warnings
from collections import deque
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import cell_windows, k1k2_chain, sequence_windows  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import graph_walk, session  # noqa: E402

OPAQUE = ("CompiledFunctionBackward", "CheckpointFunctionBackward")
LEAF = "torch::autograd::AccumulateGrad"


# ----- the reference -----
class Reference:
    """Everything the walk reports, recomputed the plain way."""

    def __init__(
        self, roots: list[Any], resolve: Any, *, max_nodes: int | None, measure_saved: bool
    ) -> None:
        # Breadth-first, children in `next_functions` order; past `max_nodes` nodes found,
        # nodes are counted but not expanded.
        self.nodes: list[Any] = []
        where: dict[int, int] = {}
        for root in roots:
            if root is not None and id(root) not in where:
                where[id(root)] = len(self.nodes)
                self.nodes.append(root)
        self.root_count = len(self.nodes)
        self.kids: list[list[int]] = []
        self.limited = False
        queue = deque(range(len(self.nodes)))
        while queue:
            i = queue.popleft()
            if max_nodes is not None and len(self.nodes) >= max_nodes:
                self.limited = True
                self.kids.append([])
                continue
            mine = []
            for child, _ in self.nodes[i].next_functions:
                if child is None:
                    continue
                if id(child) not in where:
                    where[id(child)] = len(self.nodes)
                    self.nodes.append(child)
                    queue.append(where[id(child)])
                mine.append(where[id(child)])
            self.kids.append(mine)
        self.n = len(self.nodes)
        self.names = [node.name() for node in self.nodes]
        self.tags = [resolve(node) for node in self.nodes]
        self._check_tags()
        self.measure_saved = measure_saved

    def _check_tags(self) -> None:
        """Steps never grow from a node to its children, and one step has one length: so the
        distinct steps of a path are its runs of equal steps, which `horizon` counts."""
        lengths: dict[int, int] = {}
        for i in range(self.n):
            tag = self.tags[i]
            if tag is not None:
                assert lengths.setdefault(tag[0], tag[1]) == tag[1]
                for j in self.below(i):
                    if self.tags[j] is not None:
                        assert self.tags[j][0] <= tag[0]

    def below(self, i: int) -> set[int]:
        """Every node reachable from i, i excluded."""
        seen: set[int] = set()
        stack = list(self.kids[i])
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                stack.extend(self.kids[j])
        return seen

    def reach(self, i: int) -> set[int]:
        """Nodes reachable from i through untagged nodes only (the last one may be tagged)."""
        seen: set[int] = set()
        stack = list(self.kids[i])
        while stack:
            j = stack.pop()
            if j in seen:
                continue
            seen.add(j)
            if self.tags[j] is None:
                stack.extend(self.kids[j])
        return seen

    def nearest_tagged_below(self, i: int) -> set[int]:
        return {j for j in self.reach(i) if self.tags[j] is not None}

    def step_above(self, i: int) -> int | None:
        """The largest step among the tagged nodes nearest above i."""
        steps = [
            self.tags[x][0]
            for x in range(self.n)
            if self.tags[x] is not None and i in self.reach(x)
        ]
        return max(steps, default=None)

    def own_step(self, i: int) -> tuple[int | None, int]:
        """(first step, steps covered) of i's own tag, else of the nearest tagged above it."""
        tag = self.tags[i]
        if tag is not None:
            return tag
        above = self.step_above(i)
        spans = [t[1] for t in self.tags if t is not None and t[0] == above]
        return above, spans[0] if spans else 1

    def horizon(self) -> int:
        """Longest path from a root, counting each step once (a new run of equal steps)."""
        memo: dict[tuple[int, int | None], int] = {}
        for root in range(self.root_count):
            stack: list[tuple[int, int | None, bool]] = [(root, None, False)]
            while stack:
                i, last, ready = stack.pop()
                if (i, last) in memo:
                    continue
                tag = self.tags[i]
                step = tag[0] if tag is not None else last
                if not ready:
                    stack.append((i, last, True))
                    stack.extend((c, step, False) for c in self.kids[i])
                    continue
                gain = tag[1] if tag is not None and tag[0] != last else 0
                memo[(i, last)] = gain + max((memo[(c, step)] for c in self.kids[i]), default=0)
        return max((memo[(r, None)] for r in range(self.root_count)), default=0)

    def expected(self) -> dict[str, Any]:
        tagged = [i for i in range(self.n) if self.tags[i] is not None]
        reached: set[int] = set()
        links: set[tuple[int, int]] = set()
        links_exact = True
        cuts: set[int] = set()
        # A step is linked when carried state from an earlier step flows into it: a tagged
        # node of that step has an earlier step's node below it, or the step is inside a
        # multi-step tag (a sequence module's call, linked by its own recurrence).
        linked: set[int] = set()
        for i in tagged:
            start, count = self.tags[i]
            reached.update(range(start, start + count))
            linked.update(range(start + 1, start + count))
            keys = {self.tags[j][0] for j in self.nearest_tagged_below(i)}
            if any(k < start for k in keys):
                linked.add(start)
            # The walk keeps the best two first steps below each node: all of them when
            # there are at most two.
            links_exact &= len(keys) <= 2
            links.update((k, start) for k in keys if k < start)
            if all(self.tags[j] is None or self.tags[j][0] == start for j in self.below(i)):
                cuts.add(id(self.nodes[i]))
        state_leaves, stale = [], []
        for i in range(self.n):
            if self.names[i] != LEAF:
                continue
            var = getattr(self.nodes[i], "variable", None)
            above = self.step_above(i)
            if var is not None and above is not None and not isinstance(var, nn.Parameter):
                state_leaves.append(var)
                cuts.add(id(self.nodes[i]))
                if var.grad is not None:
                    stale.append((tuple(var.shape), above))
        saved, unreadable = self.saved()
        return {
            "node_count": self.n,
            "node_limited": self.limited,
            "horizon": self.horizon(),
            "reached": reached,
            "links": links,
            "links_exact": links_exact,
            "cut_steps": reached - linked,
            "cut_node_ids": cuts,
            "node_steps": {id(self.nodes[i]): self.tags[i][0] for i in tagged},
            "opaque": [
                name
                for name, tag in zip(self.names, self.tags, strict=True)
                if tag is None and any(m in name for m in OPAQUE)
            ],
            "state_leaves": state_leaves,
            "stale_leaves": stale,
            "saved_bytes": saved,
            "unreadable": unreadable,
        }

    def saved(self) -> tuple[int, list[tuple[str, int | None, int, str]]]:
        """Bytes of the distinct storages (by data pointer) of all saved tensors, and the
        first unreadable saved tensor of each node."""
        if not self.measure_saved:
            return 0, []
        storages: dict[int, int] = {}
        unreadable = []
        for i, node in enumerate(self.nodes):
            if self.names[i] == LEAF:
                continue
            for attr in sorted(a for a in dir(node) if a.startswith("_saved_")):
                try:
                    value = getattr(node, attr)
                except RuntimeError as exc:
                    text = str(exc)
                    if "a second time" in text or "freed" in text:
                        unreadable.append((self.names[i], *self.own_step(i), "freed"))
                    elif "inplace operation" in text:
                        unreadable.append((self.names[i], *self.own_step(i), "inplace"))
                    break
                values = value if isinstance(value, (tuple, list)) else (value,)
                for t in values:
                    if isinstance(t, torch.Tensor):
                        storage = t.untyped_storage()
                        storages.setdefault(storage.data_ptr(), storage.nbytes())
        return sum(storages.values()), unreadable


def assert_same(walk: graph_walk.WalkResult, ref: Reference, snapshot_limit: int) -> None:
    want = ref.expected()
    assert walk.node_count == want["node_count"]
    assert walk.node_limited == want["node_limited"]
    assert walk.horizon == want["horizon"]
    assert walk.reached == want["reached"]
    if want["links_exact"]:
        assert walk.links == want["links"]
        assert walk.cut_steps == want["cut_steps"]
    else:
        assert walk.links <= want["links"]
        assert walk.cut_steps >= want["cut_steps"]
    assert walk.cut_node_ids == want["cut_node_ids"]
    assert walk.node_steps == want["node_steps"]
    assert walk.opaque == want["opaque"]
    assert [ref() for ref in walk.state_leaves] == want["state_leaves"]
    assert walk.stale_leaves == want["stale_leaves"]
    assert walk.saved_bytes == want["saved_bytes"]
    got = [
        (f.node, f.step, f.steps if f.step is not None else 1, f.reason) for f in walk.unreadable
    ]
    assert got == want["unreadable"]
    snap = walk.snapshot
    assert snap is not None
    if ref.n > snapshot_limit:
        assert snap.truncated and not snap.nodes
        return
    assert [(g.id, g.step) for g in snap.nodes] == [
        (i, tag[0] if tag else None) for i, tag in enumerate(ref.tags)
    ]
    for g in snap.nodes:
        name = ref.names[g.id]
        if name == LEAF:
            assert g.kind in ("param", "leaf")
            continue
        assert g.label == name
        opaque = any(m in name for m in OPAQUE)
        assert g.kind == ("opaque" if opaque else "root" if g.id < ref.root_count else "op")
    assert snap.edges == [(i, c) for i in range(ref.n) for c in ref.kids[i]]


class Recorder:
    """Wraps the session's walk; checks each walk against the reference on the live graph."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walks = 0
        self.failures: list[str] = []
        self.horizons: list[int] = []
        self.saw: set[str] = set()
        real = graph_walk.walk_graph

        def checked(roots, resolve, **options):  # type: ignore[no-untyped-def]
            walk = real(roots, resolve, **options)
            ref = Reference(
                list(roots),
                resolve,
                max_nodes=options.get("max_nodes"),
                measure_saved=options.get("measure_saved", True),
            )
            try:
                assert_same(walk, ref, options.get("snapshot_limit", 5000))
            except AssertionError as exc:  # the session would swallow it: keep it
                import traceback

                self.failures.append(f"walk {self.walks}: {exc}\n{traceback.format_exc()}")
            self.walks += 1
            self.horizons.append(walk.horizon)
            for name in ("links", "opaque", "state_leaves", "stale_leaves", "unreadable"):
                if getattr(walk, name):
                    self.saw.add(name)
            if walk.node_limited:
                self.saw.add("node_limited")
            return walk

        monkeypatch.setattr(session, "walk_graph", checked)

    def check(self, t: Any) -> None:
        assert not t.internal_errors
        assert self.walks > 0
        assert not self.failures, self.failures[0]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return Recorder(monkeypatch)


# ----- the graphs -----
@pytest.mark.parametrize(
    ("cell_cls", "lstm"), [(nn.RNNCell, False), (nn.GRUCell, False), (nn.LSTMCell, True)]
)
@pytest.mark.parametrize("detach", [True, False])
def test_cell_loops(recorder, cell_cls, lstm, detach):
    with trace(None) as t:
        cell_windows(
            cell_cls(3, 5),
            steps=18,
            window=6,
            lstm=lstm,
            detach_h=detach,
            detach_c=detach,
            retain_graph=not detach,
        )
    recorder.check(t)
    assert recorder.horizons == ([6, 6, 6] if detach else [6, 12, 18])


def test_cuts_at_uneven_steps(recorder):
    torch.manual_seed(0)
    cell = nn.LSTMCell(3, 4)
    x = torch.randn(26, 2, 3)
    with trace(None) as t:
        h, c = torch.zeros(2, 4), torch.zeros(2, 4)
        loss = torch.zeros(())
        for step in range(26):
            if step in (3, 8, 11, 16, 20):  # 8 and 16: right after a backward
                h, c = h.detach(), c.detach()
            h, c = cell(x[step], (h, c))
            loss = loss + h.pow(2).mean()
            if step in (7, 15, 25):
                loss.backward()
                loss = torch.zeros(())
    recorder.check(t)
    assert recorder.horizons == [5, 5, 6]


def test_partly_detached_tuple_state(recorder):
    with trace(None) as t:
        cell_windows(
            nn.LSTMCell(3, 4), steps=15, window=5, lstm=True, detach_c=False, retain_graph=True
        )
    recorder.check(t)
    assert recorder.horizons == [5, 10, 15]  # c carries the gradient on past h's cut


@pytest.mark.parametrize("leak", [False, True])
def test_two_layer_lstm(recorder, leak):
    with trace(None) as t:
        sequence_windows(nn.LSTM(3, 4, num_layers=2), steps=12, window=4, leak=leak)
    recorder.check(t)
    assert recorder.horizons == ([4, 8, 12] if leak else [4, 4, 4])


def test_branches_and_stacked_cells(recorder):
    torch.manual_seed(1)
    lower, upper = nn.GRUCell(3, 4), nn.GRUCell(4, 4)
    head_a, head_b = nn.Linear(4, 1), nn.Linear(4, 1)
    x = torch.randn(14, 2, 3)
    with trace(None) as t:
        h1 = h2 = prev = torch.zeros(2, 4)
        loss = torch.zeros(())
        for step in range(14):
            h1 = lower(x[step], h1)
            # A skip connection to two steps back, and a second head on the lower cell.
            h2, prev = upper(h1, h2 + 0.5 * prev), h2
            loss = loss + head_a(h2).pow(2).mean() + head_b(h1).abs().mean()
            if step % 7 == 6:
                loss.backward()
                loss = torch.zeros(())
                h1, h2, prev = h1.detach(), h2.detach(), prev.detach()
    recorder.check(t)
    assert recorder.horizons == [7, 7]
    assert "links" in recorder.saw


def test_opaque_checkpoint_region(recorder):
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(2)
    emb, cell = nn.Linear(3, 3), nn.GRUCell(3, 4)
    x = torch.randn(12, 2, 3)

    def window(h, xs):  # type: ignore[no-untyped-def]
        for i in range(xs.shape[0]):
            h = cell(xs[i], h)
        return h

    with trace(None) as t:
        h = torch.zeros(2, 4)
        for start in range(0, 12, 4):
            h = cell(x[start], h)  # a visible step before the opaque region
            h = checkpoint(window, h, emb(x[start + 1 : start + 4]), use_reentrant=True)
            h.pow(2).mean().backward()
            h = h.detach()
    recorder.check(t)
    assert "opaque" in recorder.saw


def test_compiled_cell_regions_are_steps_not_opaque(recorder):
    # torch 2.3+: the region a compiled cell runs is one node, tagged as the step (opaque but
    # tagged: nothing hidden); a compiled window around it is opaque and untagged.
    if not hasattr(torch.compiler, "is_compiling"):
        pytest.skip("torch.compile of torch < 2.3: see test_trace_compile.py")
    torch._dynamo.reset()
    torch.manual_seed(3)
    cell = nn.GRUCell(3, 4)
    step = torch.compile(cell, backend="aot_eager")
    window = torch.compile(lambda h, xs: [h := cell(x, h) for x in xs][-1], backend="aot_eager")
    x = torch.randn(8, 2, 3)
    with warnings.catch_warnings(), trace(None) as t:
        warnings.simplefilter("ignore")
        h = torch.zeros(2, 4)
        for start in (0, 4):
            for i in range(start, start + 4):
                h = step(x[i], h)
            h.pow(2).mean().backward(retain_graph=True)
        h = window(h.detach(), x[:4])
        h.pow(2).mean().backward()
    torch._dynamo.reset()
    recorder.check(t)
    assert recorder.horizons == [4, 8, 0]
    assert [bool(c.opaque) for c in t.calls] == [False, False, True]


def test_leaf_states_and_stale_grads(recorder):
    with trace(None) as t:
        k1k2_chain(k1=2, k2=4, steps=10, clear_stale=False)
    recorder.check(t)
    assert {"state_leaves", "stale_leaves"} <= recorder.saw


def test_freed_and_bumped_saved_tensors(recorder):
    torch.manual_seed(3)
    cell = nn.RNNCell(3, 4)
    x = torch.randn(4, 2, 3)
    with trace(None) as t:
        h = cell(x[0], torch.zeros(2, 4))
        h.sum().backward()
        with pytest.raises(RuntimeError):
            cell(x[1], h).sum().backward()  # h's graph was freed by the first backward
        h = cell(x[2], torch.zeros(2, 4))
        out = cell(x[3], h).sigmoid()
        out.mul_(2)  # bumps the sigmoid's saved output
        with pytest.raises(RuntimeError):
            out.sum().backward()
    recorder.check(t)
    assert "unreadable" in recorder.saw


@pytest.mark.parametrize("limit", [7, 40])
def test_node_limit(recorder, limit):
    with trace(None, max_walk_nodes=limit, snapshot_node_limit=30) as t:
        cell_windows(nn.LSTMCell(3, 4), steps=8, window=8, lstm=True)
    recorder.check(t)
    assert "node_limited" in recorder.saw


def test_big_graph_skips_snapshot(recorder):
    with trace(None, snapshot_node_limit=50) as t:
        cell_windows(nn.GRUCell(3, 4), steps=20, window=20)
    recorder.check(t)
    assert recorder.horizons == [20]


# ----- synthetic graphs: many shapes and ties, no torch graph needed -----
class FakeNode:
    def __init__(self, name: str) -> None:
        self._name = name
        self.kids: list[FakeNode | None] = []
        self.tag: tuple[int, int] | None = None

    def name(self) -> str:
        return self._name

    @property
    def next_functions(self) -> tuple[tuple[FakeNode | None, int], ...]:
        return tuple((kid, 0) for kid in self.kids)


def random_graph(rng: random.Random) -> list[FakeNode]:
    """A DAG in creation order: node i only points to older nodes (larger indices), and its
    step never grows towards them, as in an unrolled loop."""
    n = rng.randint(1, 40)
    names = ["AddBackward0", "MulBackward0", "CheckpointFunctionBackward", "TanhBackward0"]
    nodes = [FakeNode(rng.choice(names)) for _ in range(n)]
    step = rng.randint(0, 12)
    lengths = {s: rng.choice([1, 1, 2, 3]) for s in range(13)}
    for i, node in enumerate(nodes):
        if rng.random() < 0.3:
            step = max(step - rng.randint(0, 2), 0)
        if rng.random() < rng.choice([0.2, 0.5, 0.9]):
            node.tag = (step, lengths[step])
        if i + 1 < n:
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
                node.kids.append(nodes[rng.randint(i + 1, n - 1)])
            if rng.random() < 0.1:
                node.kids.append(None)
    return nodes


def test_random_graphs_match_the_reference():
    rng = random.Random(1234)
    for _ in range(1500):
        nodes = random_graph(rng)
        roots = [nodes[0]] + ([rng.choice(nodes)] if rng.random() < 0.3 else [])
        max_nodes = rng.choice([None, None, rng.randint(1, 20)])
        walk = graph_walk.walk_graph(
            roots,
            lambda node: node.tag,
            measure_saved=False,
            snapshot_limit=25,
            max_nodes=max_nodes if max_nodes is not None else 10**9,
        )
        ref = Reference(roots, lambda node: node.tag, max_nodes=max_nodes, measure_saved=False)
        assert_same(walk, ref, 25)
