"""The node-by-node graph of nn.LSTM/GRU/RNN windows: what each cluster holds, where the gradient
stops (into every layer), the K2 boundary and the legend. Structure only, no golden images."""

from __future__ import annotations

import contextlib
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("graphviz")

from _trace_loops import TinyCell, cell_windows, k1k2_chain, sequence_windows  # noqa: E402
from torch import nn  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import render  # noqa: E402
from tbptt_lint.tracer.graph_image import choose_dot, graph_svg  # noqa: E402
from tbptt_lint.tracer.torchviz_compat import BEYOND_BACKGROUND, CUT_COLOUR  # noqa: E402


def _traced(rnn: nn.Module, *, steps: int, window: int, leak: bool = False, k2: int | None = 5):
    with trace(rnn) as t:
        sequence_windows(rnn, steps=steps, window=window, leak=leak)
    if k2 is not None:
        with contextlib.suppress(AssertionError):  # a leak fails; the picture is checked
            t.assert_tbptt(k1=window, k2=k2)
    return t.summary()


def _clusters(dot: str) -> dict[int, tuple[str, str]]:
    """first step -> (label, the header's attributes) of each step cluster."""
    found = re.findall(r'subgraph cluster_step_(\d+) \{\n\t\tlabel="([^"]*)" ([^\n]*)\n', dot)
    return {int(step): (label, attrs) for step, label, attrs in found}


def _markers(dot: str) -> list[tuple[str, str, str]]:
    """(marker text, target node, edge attributes) of each cut drawn into the graph."""
    texts = dict(re.findall(r'\t(cut\w*) \[label="([^"]*)"', dot))
    return [
        (texts[m], target, attrs)
        for m, target, attrs in re.findall(r"\t(cut\w*) -> (\w+) \[([^\]]*)\]", dot)
    ]


@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_window_cluster_names_its_steps_and_layers_and_cuts_every_layer(batch_first):
    rnn = nn.LSTM(3, 4, num_layers=2, batch_first=batch_first)
    dot, view = choose_dot(_traced(rnn, steps=20, window=5))
    assert view == "torchviz"
    clusters = _clusters(dot)
    assert list(clusters) == [15]
    label, attrs = clusters[15]
    assert label.startswith("t=15\u201319\\n") and "5 steps, 2 layers" in label
    assert "\\nnn.LSTM: 5 steps" in label and f'color="{CUT_COLOUR}"' in attrs
    markers = _markers(dot)
    # One cut per layer, each into its own layer's node (the CPU's one node per layer).
    assert sorted(text for text, _, _ in markers) == [
        "layer 1 state (h, c)",
        "layer 2 state (h, c)",
    ]
    targets = {target for _, target, _ in markers}
    assert len(targets) == 2
    for target in targets:
        assert re.search(rf"\t\t{target} \[label=\w*Rnn\w*Backward", dot)


def test_one_layer_lstm_cluster_does_not_claim_layers():
    rnn = nn.LSTM(3, 4)
    dot, _ = choose_dot(_traced(rnn, steps=9, window=3))
    label, _ = _clusters(dot)[6]
    assert label.startswith("t=6\u20138\\n") and "3 steps" in label and "layers" not in label
    assert [text for text, _, _ in _markers(dot)] == ["layer 1 state (h, c)"]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", [nn.GRU, nn.RNN])
def test_unfused_gru_and_rnn_get_one_cut_into_the_cluster_naming_the_layers(
    kind, layers, batch_first
):
    rnn = kind(3, 4, num_layers=layers, batch_first=batch_first)  # CPU: plain ops
    dot, _ = choose_dot(_traced(rnn, steps=6, window=3), view="torchviz")
    label, _ = _clusters(dot)[3]
    assert label.startswith("t=3\u20135\\n") and f"nn.{kind.__name__}: 3 steps" in label
    assert ("2 layers" in label) == (layers == 2)
    ((text, _, attrs),) = _markers(dot)
    assert text == "state (h)" + (" of 2 layers" if layers == 2 else "")
    assert "lhead=cluster_step_3" in attrs


def test_leak_shades_clusters_beyond_k2_and_cuts_only_where_the_gradient_stops():
    rnn = nn.LSTM(3, 4, num_layers=2)
    dot, _ = choose_dot(_traced(rnn, steps=15, window=5, leak=True))
    clusters = _clusters(dot)
    assert list(clusters) == [0, 5, 10]
    for start in (0, 5):
        label, attrs = clusters[start]
        assert "further back than k2=5" in label and BEYOND_BACKGROUND in attrs
    label, attrs = clusters[10]
    assert "the expected window (k2=5) begins here" in label
    assert BEYOND_BACKGROUND not in attrs and CUT_COLOUR not in attrs
    # State flowed into steps 5 and 10: the only cut is at the first call's layers.
    assert CUT_COLOUR in clusters[0][1] and CUT_COLOUR not in clusters[5][1]
    inside_0 = dot.split("subgraph cluster_step_0 {")[1].split("\t}")[0]
    assert len(_markers(dot)) == 2
    assert all(f"\t\t{target} [" in inside_0 for _, target, _ in _markers(dot))


def test_k2_inside_a_call_names_the_step_where_the_window_begins():
    rnn = nn.LSTM(3, 4)
    dot, _ = choose_dot(_traced(rnn, steps=15, window=5, leak=True, k2=7))
    assert "the expected window (k2=7) begins at t=8" in _clusters(dot)[5][0]
    assert "further back than k2=7" in _clusters(dot)[0][0]


def test_legend_and_title_are_drawn_and_k2_only_when_known():
    rnn = nn.LSTM(3, 4)
    dot, _ = choose_dot(_traced(rnn, steps=10, window=5, k2=None))
    assert "\tlegend [" in dot and "cut: no state from an earlier step flows in" in dot
    assert "node colour: one per time step" in dot  # the fills are explained too
    assert "further back than" not in dot and 'label="backward #1 after step 10' in dot
    dot, _ = choose_dot(_traced(rnn, steps=10, window=5, k2=5))
    assert "shaded box: further back than k2=5 steps" in dot


def test_cells_keep_one_cluster_per_step():
    cell = nn.LSTMCell(3, 4)
    with trace(cell) as t:
        cell_windows(cell, steps=8, window=4, lstm=True)
    dot, view = choose_dot(t.summary())
    assert view == "torchviz"
    labels = [label.split("\\n")[0] for label, _ in _clusters(dot).values()]
    assert labels == ["t=4", "t=5", "t=6", "t=7"]
    # The cut state enters the step's first ops with no autograd edge: one cut into the
    # cluster, naming the cell's state (it used to point at the step's outputs).
    ((text, _, attrs),) = _markers(dot)
    assert text == "state (h, c)" and "lhead=cluster_step_4" in attrs


def test_k1k2_chain_is_drawn_condensed_and_its_leaf_state_is_the_cut():
    with trace(None) as t:
        k1k2_chain(2, 5, steps=12)
    summary = t.summary()
    assert summary.calls[-1].continuations > 0
    # The node-by-node copy holds only the chain's first backward: it would show one step.
    assert choose_dot(summary)[1] == "condensed"
    dot, _ = choose_dot(summary, view="torchviz")
    assert [text for text, _, _ in _markers(dot)] == ["leaf state"]


@pytest.mark.skipif(render.find_renderer() is None, reason="no Graphviz renderer")
def test_lstm_graph_svg_shows_steps_layers_cuts_and_legend():
    rnn = nn.LSTM(3, 4, num_layers=2)
    svg, view = graph_svg(_traced(rnn, steps=10, window=5))
    assert view == "torchviz"
    for text in (
        ">t=5\u20139</text>",
        "5 steps, 2 layers</text>",
        ">layer 1 state (h, c)</text>",
        ">layer 2 state (h, c)</text>",
        "the gradient stops here",
        "the expected window (k2=5) begins here</text>",
    ):
        assert text in svg, text


def test_bidirectional_lstm_cuts_each_layer_and_direction():
    rnn = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    with trace(rnn) as t:  # traced by itself: the label names it by its class alone
        sequence_windows(rnn, steps=8, window=4)
    dot, _ = choose_dot(t.summary())
    label, _ = _clusters(dot)[4]
    assert "\\nnn.LSTM: 4 steps, 2 layers, bidirectional" in label
    texts = sorted(text for text, _, _ in _markers(dot))
    assert texts == [f"layer {n} state (h, c), one direction" for n in (1, 1, 2, 2)]
    assert len({target for _, target, _ in _markers(dot)}) == 4


def test_hand_written_cell_is_cut_into_its_cluster():
    cell = TinyCell(3, 4)
    with trace(cell) as t:
        cell_windows(cell, steps=8, window=4)
    dot, view = choose_dot(t.summary())
    assert view == "torchviz"
    labels = [label.split("\\n")[0] for label, _ in _clusters(dot).values()]
    assert labels == ["t=4", "t=5", "t=6", "t=7"]
    ((text, _, attrs),) = _markers(dot)
    assert text == "state" and "lhead=cluster_step_4" in attrs
