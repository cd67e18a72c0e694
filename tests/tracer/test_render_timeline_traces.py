"""The timeline SVG of real traced loops: cells coloured from `cut_steps`, the expected window
outlined where k2 puts it, steps beyond it marked, a legend, a tooltip per cell."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import TinyCell, cell_windows, k1k2_chain, sequence_windows  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import timeline  # noqa: E402
from tbptt_lint.tracer.timeline import timeline_svg  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def cells(root: ET.Element) -> dict[tuple[int, int], ET.Element]:
    """(call, step) -> the rect of that reached cell."""
    return {
        (int(r.get("data-call")), int(r.get("data-step"))): r
        for r in root.iter(f"{SVG}rect")
        if "reached" in r.get("class", "").split()
    }


def check_svg(t, k2: int | None) -> ET.Element:
    """Every reached step has a cell whose class and colour say whether it is a cut step,
    or beyond the expected window; every row outlines that window."""
    summary = t.summary()
    root = ET.fromstring(timeline_svg(summary, k2))
    if k2 is None:
        k2 = summary.expected_k2  # what the picture uses when given none
    found = cells(root)
    want = {(c.index, s) for c in summary.calls for s in c.reached_steps}
    assert set(found) == want
    colour = {
        "linked": timeline._hex(timeline.BLUE),
        "cut": timeline._hex(timeline.ORANGE),
        "beyond": timeline._hex(timeline.RED),
    }
    for call in summary.calls:
        start = timeline.window_start(call, k2) if k2 is not None else 0
        for step in call.reached_steps:
            rect = found[(call.index, step)]
            classes = set(rect.get("class").split())
            assert ("cut" in classes) == (step in call.cut_steps)
            assert ("linked" in classes) == (step not in call.cut_steps)
            assert ("beyond" in classes) == (step < start)
            kind = "beyond" if step < start else "cut" if step in call.cut_steps else "linked"
            assert rect.get("fill") == colour[kind]
            title = rect.find(f"{SVG}title").text
            assert f"step {step}, backward #{call.index}" in title
            assert ("stops here" in title) == (step in call.cut_steps)
    windows = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "expected-window"]
    if k2 is None:
        assert not windows
    else:
        grid = timeline.build_grid(summary, k2)
        assert [int(w.get("data-call")) for w in windows] == [c.index for c in summary.calls]
        for w, call in zip(windows, summary.calls, strict=True):
            assert int(w.get("x")) == timeline.window_start(call, k2) * grid.cell_w
            assert int(w.get("x")) + int(w.get("width")) == call.step * grid.cell_w
            assert w.get("fill") == "none"
    legend = root.find(f".//{SVG}g[@class='legend']")
    assert legend is not None
    kinds = {g.get("class").split()[1] for g in legend.findall(f"{SVG}g")}
    assert {"linked", "cut", "mark"} <= kinds
    assert ({"window", "beyond"} <= kinds) == (k2 is not None)
    return root


SEQUENCE_CASES = [
    pytest.param(cls, layers, batch_first, id=f"{cls.__name__}-{layers}-bf{int(batch_first)}")
    for cls in (nn.RNN, nn.LSTM, nn.GRU)
    for layers in (1, 2)
    for batch_first in (False, True)
]


@pytest.mark.parametrize(("rnn_cls", "layers", "batch_first"), SEQUENCE_CASES)
def test_sequence_module_rows_are_blue_after_one_cut(rnn_cls, layers, batch_first):
    rnn = rnn_cls(4, 6, num_layers=layers, batch_first=batch_first)
    with trace(rnn) as t:
        sequence_windows(rnn, window=5, steps=20)
    t.assert_tbptt(k1=5, k2=5)
    root = check_svg(t, None)  # k2 from assert_tbptt
    classes = [r.get("class") for r in cells(root).values()]
    assert classes.count("reached cut") == 4 and classes.count("reached linked") == 16


@pytest.mark.parametrize("rnn_cls", [nn.LSTM, nn.GRU])
def test_sequence_module_leak_is_red_beyond_the_window(rnn_cls):
    rnn = rnn_cls(4, 6, num_layers=2)
    with trace(rnn) as t:
        sequence_windows(rnn, window=5, steps=20, leak=True)
    root = check_svg(t, 5)
    beyond = [k for k, r in cells(root).items() if "beyond" in r.get("class")]
    assert sorted(beyond) == [(call, s) for call in range(4) for s in range(5 * call)]
    root = check_svg(t, None)  # nothing asserted: no window, no red
    assert not any("beyond" in r.get("class") for r in cells(root).values())


@pytest.mark.parametrize(
    ("cell_cls", "lstm"), [(nn.RNNCell, False), (nn.GRUCell, False), (nn.LSTMCell, True)]
)
@pytest.mark.parametrize("every", [False, True])
def test_cells(cell_cls, lstm, every):
    with trace(None) as t:
        cell_windows(cell_cls(4, 6), lstm=lstm, steps=20, window=5, detach_every_step=every)
    check_svg(t, 5)


def test_hand_written_cell_and_a_wrong_k2():
    with trace(None) as t:
        cell_windows(TinyCell(4, 6), window=6, steps=24)
    root = check_svg(t, 10)  # windows of 6 outlined 10 wide: 4 steps left empty in each
    assert not any("beyond" in r.get("class") for r in cells(root).values())


def test_k1_k2_recipe_windows_overlap():
    with trace(None) as t:
        k1k2_chain(k1=2, k2=5, steps=12)
    t.assert_tbptt(k1=2, k2=5)
    check_svg(t, None)
