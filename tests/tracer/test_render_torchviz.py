"""torchviz on Pythons without distutils, and DOT coloured and grouped by time step."""

from __future__ import annotations

import re
import sys
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("graphviz")

from tbptt_lint.tracer import render, torchviz_compat  # noqa: E402
from tbptt_lint.tracer.torchviz_compat import LooseVersion, dot_source_for, load_make_dot  # noqa: E402

BLOCKED = ("distutils", "distutils.version")


@pytest.fixture
def no_distutils(monkeypatch):
    """Simulate Python 3.12+ without setuptools: `import distutils` fails, torchviz not loaded."""
    for name in [m for m in sys.modules if m == "torchviz" or m.startswith("torchviz.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in BLOCKED:
        monkeypatch.setitem(sys.modules, name, None)
    yield
    # monkeypatch restores the originals; the torchviz loaded under the shim goes away with it


def test_loose_version_compares_like_torchviz_needs():
    assert LooseVersion("2.13.0+cpu") > LooseVersion("1.9")
    assert LooseVersion("1.8.1") < LooseVersion("1.9")
    assert not LooseVersion("1.10") < LooseVersion("1.9")
    assert LooseVersion("1.9") == "1.9"
    assert LooseVersion("2.1.0a0") < LooseVersion("2.1.0b")


def test_make_dot_imports_with_distutils_blocked(no_distutils):
    with pytest.raises(ImportError):
        import distutils.version  # noqa: F401
    make_dot = load_make_dot()
    assert make_dot.__module__ == "torchviz.dot"
    # the stand-in was only there for the import
    assert all(sys.modules[name] is None for name in BLOCKED)
    assert sys.modules["torchviz.dot"].LooseVersion is LooseVersion
    x = torch.ones(2, requires_grad=True)
    assert "MulBackward0" in make_dot((x * 2).sum()).source


def test_shim_is_removed_even_when_nothing_was_there(no_distutils, monkeypatch):
    for name in BLOCKED:
        monkeypatch.delitem(sys.modules, name)
    load_make_dot()
    assert not any(name in sys.modules for name in BLOCKED)


@pytest.fixture
def torchviz_unloaded(monkeypatch):
    """torchviz not imported yet; distutils left as this Python has it (3.11: present)."""
    for name in [m for m in sys.modules if m == "torchviz" or m.startswith("torchviz.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in BLOCKED:
        if name in sys.modules:
            monkeypatch.setitem(sys.modules, name, sys.modules[name])
    yield


def test_make_dot_never_warns_even_where_distutils_exists(torchviz_unloaded):
    # A real distutils LooseVersion warns on every make_dot call; as an error (-W error) it
    # would cost the picture.
    make_dot = load_make_dot()
    assert sys.modules["torchviz.dot"].LooseVersion is LooseVersion
    x = torch.ones(2, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "MulBackward0" in make_dot((x * 2).sum()).source


def rnn_graph(steps: int, cut_at: int):
    """A small RNNCell loop whose state is detached before step `cut_at`; per-step losses."""
    torch.manual_seed(0)
    cell = torch.nn.RNNCell(3, 4)
    h = torch.zeros(1, 4)
    outputs, node_steps, cut_ids = [], {}, set()
    # The ids name Python node objects; torch 2.11 makes a new one for a node each time it is
    # reached once the old one is gone, so every node seen is held while its id is used.
    held = []
    for t in range(steps):
        if t == cut_at:
            h = h.detach()
        h_in = h
        h = cell(torch.randn(1, 3), h)
        outputs.append(h)
        # The step's own nodes: walk back from h, stopping at nodes seen in earlier steps.
        stack = [h.grad_fn]
        while stack:
            fn = stack.pop()
            if fn is None or id(fn) in node_steps or type(fn).__name__ == "AccumulateGrad":
                continue
            node_steps[id(fn)] = t
            held.append(fn)
            for nxt, _ in fn.next_functions:
                stack.append(nxt)
        if t == cut_at:
            # The node that consumed the detached state: the mm with weight_hh.
            consumers = [
                fn
                for fid, fn in _nodes(h.grad_fn)
                if node_steps.get(fid) == t
                and h_in.grad_fn is None
                and "Addmm" in type(fn).__name__
            ]
            cut_ids.add(id(consumers[-1]))
    loss = torch.stack(outputs).sum()
    return cell, loss, node_steps, cut_ids, (outputs, held)


def _nodes(root):
    seen, stack = {}, [root]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen[id(fn)] = fn
        stack.extend(n for n, _ in fn.next_functions)
    return seen.items()


def test_dot_source_groups_colours_and_marks_the_cut():
    cell, loss, node_steps, cut_ids, keep = rnn_graph(5, cut_at=2)
    dot = dot_source_for([loss], node_steps, cut_ids, params=dict(cell.named_parameters()))
    clusters = re.findall(r"subgraph cluster_step_(\d+) \{\n\t\tlabel=\"t=(\d+)\"", dot)
    assert clusters == [(str(t), str(t)) for t in range(5)]
    for t in range(5):
        body = dot.split(f"subgraph cluster_step_{t} {{")[1].split("\t}")[0]
        ids = re.findall(r"\t\t(\d+) \[", body)
        assert set(map(int, ids)) == {k for k, v in node_steps.items() if v == t}
        assert body.count(f'fillcolor="{torchviz_compat.step_colour(t)}"') == len(ids)
    (cut,) = cut_ids
    assert re.search(
        rf'\t\t{cut} \[label=AddmmBackward0 [^\]]*style="filled,dashed" '
        rf'color="{torchviz_compat.CUT_COLOUR}"',
        dot,
    )
    assert f'cut_{cut} -> {cut} [label="cut"' in dot
    assert "weight_hh" in dot  # parameters stay outside the step clusters
    assert not re.search(r"cluster_step_\d+ \{[^}]*weight_hh", dot)
    # Edges that carry state from step t to t+1 are drawn bold; nodes of step 2 get none from 1.
    bold = re.findall(r"\t(\d+) -> (\d+) \[penwidth=2\]", dot)
    crossings = {(node_steps[int(a)], node_steps[int(b)]) for a, b in bold}
    assert crossings == {(0, 1), (3, 4), (2, 3)}
    del keep


@pytest.mark.skipif(render.find_renderer() is None, reason="no Graphviz renderer")
def test_dot_source_renders():
    cell, loss, node_steps, cut_ids, _ = rnn_graph(4, cut_at=2)
    dot = dot_source_for([loss], node_steps, cut_ids, params=dict(cell.named_parameters()))
    svg = render.render_dot(dot, "svg").decode()
    assert "t=3" in svg and ">cut</text>" in svg


def test_nodes_feeding_one_tagged_step_join_its_cluster():
    cell, loss, node_steps, _cut_ids, keep = rnn_graph(3, cut_at=1)
    outputs, _held = keep
    outputs_only = {id(h.grad_fn): t for t, h in enumerate(outputs)}  # only each step's tanh
    dot = dot_source_for([loss], outputs_only, set(), params=dict(cell.named_parameters()))
    for t in range(3):
        body = dot.split(f"subgraph cluster_step_{t} {{")[1].split("\t}")[0]
        ids = set(map(int, re.findall(r"\t\t(\d+) \[", body)))
        assert ids == {k for k, v in node_steps.items() if v == t}
    assert "AccumulateGrad" not in dot.split("subgraph cluster_step_0")[1].split("\t}")[0]


def test_cudnn_node_takes_every_layer_state_in_one_cut():
    # Under cuDNN an nn.LSTM call is one CudnnRnnBackward0 node for all layers (no GPU here:
    # the DOT torchviz would give is written out).
    from tbptt_lint.tracer.graph_groups import StepGroup

    body = [
        "\t1 [label=CudnnRnnBackward0]\n",
        "\t2 [label=ViewBackward0]\n",
        "\t1 -> 2\n",
    ]
    group = StepGroup("rnn", "nn.LSTM", 5, layers=2, state="h, c")
    dot = torchviz_compat._restyle(body, {}, {}, {1: 10, 2: 10}, {1}, {10}, {10: group})
    assert 'label="t=10\u201314\\nrnn (nn.LSTM): 5 steps, 2 layers' in dot
    assert re.findall(r'\t(cut\w*) \[label="([^"]*)"', dot) == [
        ("cut_1", "state (h, c) of 2 layers")
    ]
    assert "cut_1 -> 1 [" in dot
