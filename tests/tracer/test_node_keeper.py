"""NodeKeeper: walked nodes stay alive until a release, which frees what nothing else holds."""

from __future__ import annotations

import gc
import weakref

import pytest

torch = pytest.importorskip("torch")

from tbptt_lint.tracer.graph_walk import walk_graph  # noqa: E402
from tbptt_lint.tracer.node_keeper import NodeKeeper, python_objects_preserved  # noqa: E402

# Before torch 2.13 a node's Python object dies with its last Python reference, so reference
# counts cannot show who else holds a node, and the trace has no reason to hold any.
needs_preserved_objects = pytest.mark.skipif(
    not python_objects_preserved(), reason="this torch does not preserve nodes' Python objects"
)


class Marker:
    """Tied to a node through a hook: it is freed when the node is."""


def graph_with_marker(steps: int = 5) -> tuple[torch.Tensor, weakref.ref]:
    w = torch.ones(3, requires_grad=True)
    h = torch.zeros(3)
    for _ in range(steps):
        h = torch.tanh(h * w + 1)
    marker = Marker()
    h.grad_fn.register_hook(lambda grad_in, grad_out, marker=marker: None)
    return h.sum(), weakref.ref(marker)


def walked(root: torch.Tensor) -> list:
    nodes: list = []
    walk_graph([root.grad_fn], lambda node: None, keep_alive=nodes)
    return nodes


def test_held_nodes_outlive_the_program_s_references_until_a_release() -> None:
    loss, marker = graph_with_marker()
    keeper = NodeKeeper()
    keeper.hold(walked(loss))
    held = len(keeper)
    del loss
    assert marker() is not None, "the keeper must hold the graph"
    assert held > 10
    assert keeper.release() == 0
    assert marker() is None and len(keeper) == 0


@needs_preserved_objects
def test_a_graph_the_program_still_references_survives_a_release() -> None:
    loss, marker = graph_with_marker()
    keeper = NodeKeeper()
    keeper.hold(walked(loss))
    held = len(keeper)
    assert keeper.release() == held  # every node is still reachable from `loss`
    keeper.hold(walked(loss))  # walked again: held once, not twice
    assert len(keeper) == held
    del loss
    assert marker() is not None
    assert keeper.release() == 0
    assert marker() is None


def test_a_newer_graph_holding_an_older_one_frees_both_in_one_release() -> None:
    loss, marker = graph_with_marker()
    older = walked(loss)
    newer_loss = loss * 2  # its graph points into the older one
    keeper = NodeKeeper()
    keeper.hold(older)
    keeper.hold(walked(newer_loss)[:1])  # only the new node: the rest is held already
    del loss, newer_loss, older
    assert keeper.release() == 0
    assert marker() is None


def test_the_walk_lists_parents_before_children() -> None:
    loss, _ = graph_with_marker()
    nodes = walked(loss)
    position = {node: i for i, node in enumerate(nodes)}
    for node in nodes:
        for child, _ in node.next_functions:
            if child is not None:
                assert position[node] < position[child]


def test_drop_lets_go_of_everything() -> None:
    loss, marker = graph_with_marker()
    keeper = NodeKeeper()
    keeper.hold(walked(loss))
    keeper.drop()
    del loss
    assert marker() is None and len(keeper) == 0


# ----- the trace's use of it -----
from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import node_keeper, session  # noqa: E402


def cell_graph(cell: torch.nn.Module, steps: int) -> tuple[torch.Tensor, weakref.ref]:
    h = torch.zeros(2, 8)
    x = torch.randn(2, 4)
    for _ in range(steps):
        h = cell(x, h)
    marker = Marker()
    h.grad_fn.register_hook(lambda grad_in, grad_out, marker=marker: None)
    return h, weakref.ref(marker)


# torchviz's make_dot, which the trace runs on small graphs, leaves a reference cycle (its
# nested recursive functions) holding the graph until the cyclic collector runs; tests that
# look at when a graph is freed collect first.


@pytest.fixture
def small_safe_size(monkeypatch: pytest.MonkeyPatch) -> int:
    """Pretend only graphs under 50 nodes are safe to let go of in any order."""
    monkeypatch.setattr(session, "safe_free_nodes", lambda: 50)
    node_keeper.graveyard.release()
    assert len(node_keeper.graveyard) == 0
    return 50


@needs_preserved_objects
def test_a_trace_holds_walked_nodes_until_the_next_backward(small_safe_size: int) -> None:
    cell = torch.nn.RNNCell(4, 8)
    with trace(cell) as t:
        h, marker = cell_graph(cell, 20)
        h.sum().backward()
        del h
        gc.collect()
        assert marker() is not None  # held by the trace, not by the program
        h2, _ = cell_graph(cell, 20)
        h2.sum().backward()  # releases the first window's nodes
        assert marker() is None
        del h2
        gc.collect()
    assert len(t._walked) == 0 and len(node_keeper.graveyard) == 0


@needs_preserved_objects
def test_a_big_graph_the_program_keeps_waits_for_the_next_trace(small_safe_size: int) -> None:
    cell = torch.nn.RNNCell(4, 8)
    with trace(cell) as t:
        h, marker = cell_graph(cell, 20)
        h.sum().backward()
    assert len(t._walked) == 0
    assert len(node_keeper.graveyard) > small_safe_size
    del h
    gc.collect()
    assert marker() is not None  # the graveyard holds it: an unordered free could recurse
    with trace(cell):
        pass
    assert marker() is None and len(node_keeper.graveyard) == 0


def test_a_small_graph_the_program_keeps_is_let_go_of_at_exit(small_safe_size: int) -> None:
    cell = torch.nn.RNNCell(4, 8)
    with trace(cell):
        h, marker = cell_graph(cell, 2)
        h.sum().backward()
    assert len(node_keeper.graveyard) == 0
    del h
    gc.collect()
    assert marker() is None
