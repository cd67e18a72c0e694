"""NodeKeeper: walked nodes stay alive until a release, which frees what nothing else holds."""

from __future__ import annotations

import weakref

import pytest

torch = pytest.importorskip("torch")

from tbptt_lint.tracer.graph_walk import walk_graph  # noqa: E402
from tbptt_lint.tracer.node_keeper import NodeKeeper  # noqa: E402


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
