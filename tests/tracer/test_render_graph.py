"""save_graph, the condensed view and the renderer lookup."""

from __future__ import annotations

import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter

import pytest
from _render_synth import synth

from tbptt_lint.tracer import render
from tbptt_lint.tracer.condensed import build_view, condensed_dot
from tbptt_lint.tracer.graph_image import choose_dot, save_graph
from tbptt_lint.tracer.graph_legend import BEYOND_FILL
from tbptt_lint.tracer.records import BackwardCall, GraphSnapshot, TraceSummary

needs_renderer = pytest.mark.skipif(render.find_renderer() is None, reason="no Graphviz renderer")


def test_condensed_per_step_boxes_and_cut_at_the_window_boundary():
    dot = condensed_dot(synth(30, 10), call=1)
    # steps 0-9 collapse into one "earlier" box, then one box per step of window 10-19
    assert dot.count('label="t=') == 11 and 'label="t=0\u20139"' in dot
    assert dot.count('label="cut"') == 1
    assert re.search(r'b0 -> b1 \[[^\]]*label="cut"', dot)


def test_condensed_marks_a_cut_at_every_step_when_state_is_detached_each_step():
    dot = condensed_dot(synth(30, 10, "every"))
    assert dot.count('label="cut"') == 10  # boundary plus the 9 steps inside the window


def test_condensed_groups_windows_past_the_step_limit():
    s = synth(5000, 10, "leak")
    view = build_view(s)
    boxes = view.boxes
    assert view.call.horizon == 5000 and len(boxes) == 500 and not view.per_step
    assert boxes[0].start == 0 and boxes[-1].end == 5000
    assert sum(b.size for b in boxes) == 5000 and sum(b.reached for b in boxes) == 5000
    assert not any(b.cut_before or b.cuts_inside for b in boxes[1:])


def _pos(dot: str) -> dict[str, tuple[float, float]]:
    return {
        name: (float(x), float(y))
        for name, x, y in re.findall(r'^  (\w+) \[pos="([-\d.]+),([-\d.]+)!"', dot, re.M)
    }


def _box_ranges(dot: str) -> list[tuple[int, int]]:
    """(first, last) step of each box, in the order drawn, earlier-steps box left out."""
    out = []
    for name, attrs in re.findall(r'^  (b\d+) \[pos="[^"]*" (.*)\]$', dot, re.M):
        if name == "b0" and "dashed" in attrs:
            continue  # steps before the picture's range, collapsed
        span = re.search(r'label="t=(\d+)(?:\u2013(\d+))?', attrs)
        assert span, attrs
        first = int(span.group(1))
        out.append((first, int(span.group(2) or first)))
    return out


def test_condensed_boxes_are_the_windows_of_the_run():
    # 54 windows of 5 steps, never cut: 270 steps, too many for a box each. The boxes used to
    # group t=0-1, t=2-3, t=4; each must now be one window (a backward call's steps).
    dot = condensed_dot(synth(270, 5, "leak"))
    ranges = _box_ranges(dot)
    assert ranges == [(a, a + 4) for a in range(0, 270, 5)]


def test_condensed_groups_keep_the_k2_boundary_and_window_boundaries():
    s = synth(5000, 10, "leak")
    s.expected_k2 = 25  # the expected window begins inside a window: boxes are split there
    ranges = _box_ranges(condensed_dot(s))
    firsts = [a for a, _ in ranges]
    assert 4975 in firsts and all(a % 10 == 0 for a in firsts if a != 4975)
    assert all(b + 1 == a for (_, b), (a, _) in zip(ranges, ranges[1:], strict=False))


def test_condensed_edges_join_neighbours_on_one_row_and_never_cross():
    dot = condensed_dot(synth(5000, 10, "leak"))
    pos = _pos(dot)
    edges = re.findall(r"^  ([bse]\d+|root) -> ([bse]\d+|root) ", dot, re.M)
    assert len(edges) > 500
    xs = sorted({x for n, (x, _) in pos.items() if re.fullmatch(r"b\d+", n)})
    slot = min(b - a for a, b in zip(xs, xs[1:], strict=False))
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        # Horizontal, between neighbours: no two such edges can cross.
        assert ya == yb and 0 < xb - xa <= 2 * slot, (a, b)


def test_condensed_k2_boundary_sits_before_the_expected_window():
    s = synth(300, 10, "leak")  # per-step boxes: 300 steps is past the limit, so windows
    s.expected_k2 = 30
    dot = condensed_dot(s)
    pos = _pos(dot)
    names = dict(re.findall(r'^  (b\d+) \[pos="[^"]*" label="t=(\d+)', dot, re.M))
    first = next(n for n, t in names.items() if int(t) == 270)
    before = next(n for n, t in names.items() if int(t) == 260)
    (x, y), (xb, yb) = pos["k2top"], pos[first]
    assert pos[before][0] < x < xb and abs(pos["k2bot"][1] - yb) < 40 and y > yb
    # boxes further back than k2 are drawn in the warning colour, the window itself is not
    fill = dict(re.findall(r'^  (b\d+) \[[^\]]*fillcolor="(#\w+)"', dot, re.M))
    assert fill[before] == BEYOND_FILL and fill[first] != BEYOND_FILL


def test_condensed_without_k2_draws_no_boundary_and_a_legend():
    s = synth(30, 10)
    s.expected_k2 = None
    dot = condensed_dot(s)
    assert "k2top" not in dot and BEYOND_FILL not in dot
    assert "cut: the gradient stops" in dot and "gradient flows back" in dot
    s.expected_k2 = 10
    assert "K2: where the expected window begins" in condensed_dot(s)


def test_condensed_short_reach_draws_the_expected_window_unreached():
    s = synth(60, 5)
    s.expected_k2 = 10  # a correct k=5 run checked against k2=10
    view = build_view(s)
    assert view.k2_boundary == 50
    unreached = [b for b in view.boxes if not b.history and not b.reached]
    assert [(b.start, b.end) for b in unreached] == [(s, s + 1) for s in range(50, 55)]


def test_condensed_inner_steps_of_a_sequence_call_are_not_cuts():
    # nn.LSTM fed 5 steps per call, never cut: state links join call starts (50 -> 55), and
    # cut_steps says the gradient stops only at step 0.
    s = synth(60, 5, "leak")
    last = s.calls[-1]
    last.state_links = tuple((a - 5, a) for a in range(5, 60, 5))
    last.cut_steps = (0,)
    dot = condensed_dot(s)
    assert 'label="cut"' not in dot
    s.calls[-1].cut_steps = (0, 30)
    assert condensed_dot(s).count('label="cut"') == 1


def test_condensed_single_long_window_keeps_the_last_step_on_its_row():
    s = synth(200, 200)  # one backward after 200 LSTMCell steps
    dot = condensed_dot(s)
    pos = _pos(dot)
    last = max((n for n in pos if re.fullmatch(r"b\d+", n)), key=lambda n: int(n[1:]))
    row = [n for n in pos if re.fullmatch(r"b\d+", n) and pos[n][1] == pos[last][1]]
    assert len(row) > 1 and pos["root"][1] == pos[last][1]


def test_condensed_per_step_frames_hold_one_backward_window_each():
    dot = condensed_dot(synth(60, 5, "leak"))
    pos = _pos(dot)
    steps = {
        name: int(t)
        for name, t in re.findall(r'^  (b\d+) \[pos="[^"]*" label="t=(\d+)"', dot, re.M)
    }
    frames = re.findall(
        r'^  f\d+ \[pos="([-\d.]+),([-\d.]+)!" label="backward #(\d+)".* width=([\d.]+)', dot, re.M
    )
    assert len(frames) == 12
    for x, y, owner, width in frames:
        half = float(width) * 72 / 2
        inside = sorted(
            t
            for name, t in steps.items()
            if abs(pos[name][1] - float(y)) < 20 and abs(pos[name][0] - float(x)) < half
        )
        k = int(owner)
        assert inside == list(range(5 * k, 5 * k + 5)), (owner, inside)


def test_condensed_window_split_across_rows_names_its_backward_on_every_row():
    # Windows of 10 in rows of 5 (a narrow picture): a frame without a name reads as steps
    # that belong to no backward, or to the next window's.
    dot = condensed_dot(synth(50, 10, "leak"), max_width=640)
    pos = _pos(dot)
    steps = {
        name: int(t)
        for name, t in re.findall(r'^  (b\d+) \[pos="[^"]*" label="t=(\d+)"', dot, re.M)
    }
    frames = re.findall(
        r'^  f\d+ \[pos="([-\d.]+),([-\d.]+)!" label="([^"]*)".* width=([\d.]+)', dot, re.M
    )
    assert len({y for _, y in pos.values()}) > 5  # the windows really were split
    covered: list[int] = []
    for x, y, label, width in frames:
        half = float(width) * 72 / 2
        inside = sorted(
            t
            for name, t in steps.items()
            if abs(pos[name][1] - float(y)) < 20 and abs(pos[name][0] - float(x)) < half
        )
        k = int(label.removeprefix("backward #"))
        assert inside and set(inside) <= set(range(10 * k, 10 * k + 10)), (label, inside)
        covered += inside
    assert sorted(covered) == list(range(50))


@pytest.mark.parametrize(
    ("steps", "window", "k2"),
    [(1200, 10, 25), (1210, 10, 10), (90, 5, 5), (200, 200, None), (205, 5, 5), (5000, 10, 10)],
)
def test_condensed_last_row_never_holds_a_box_alone(steps, window, k2):
    s = synth(steps, window, "leak")
    s.expected_k2 = k2
    pos = _pos(condensed_dot(s))
    rows = Counter(y for n, (_, y) in pos.items() if re.fullmatch(r"b\d+", n))
    assert len(rows) > 1 and min(rows.values()) > 2, rows


@needs_renderer
@pytest.mark.parametrize(("steps", "window", "boxes"), [(5000, 10, 500), (200, 5, 200)])
def test_condensed_fits_2000_pixels_at_a_readable_size(tmp_path, steps, window, boxes):
    # 500 windows of 10 steps (one box each), and 200 steps of windows of 5 (a box per step)
    svg = save_graph(synth(steps, window, "leak"), tmp_path / "g.svg").read_text()
    root = ET.fromstring(svg)
    width_pt = float(root.get("width", "0").removesuffix("pt"))
    assert 0 < width_pt * 96 / 72 <= 2000
    sizes = {float(v) for v in re.findall(r'font-size="([\d.]+)"', svg)}
    assert min(sizes) >= 9
    assert svg.count(">t=") == boxes  # every box labelled


@needs_renderer
def test_condensed_5000_steps_renders_quickly_with_the_cut(tmp_path):
    s = synth(5000, 10, "leak")
    # cut the state once, at step 2500, in the last call
    last = s.calls[-1]
    last.reached_steps = tuple(range(2500, 5000))
    last.state_links = tuple((a, b) for a, b in last.state_links if b > 2500)
    last.cut_steps = (2500,)
    start = time.perf_counter()
    path = save_graph(s, tmp_path / "g.svg")
    assert time.perf_counter() - start < 10  # functional bound, not a speed goal
    text = path.read_text()
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    assert ">cut</text>" in text and "t=0\u20132499" in text


def _with_torchviz(summary, nodes=40):
    call = summary.calls[-1]
    call.graph_nodes = nodes
    call.snapshot = GraphSnapshot(dot_source='digraph { a [label="TORCHVIZ"] }')
    return summary


def test_small_graphs_use_torchviz_and_big_ones_the_condensed_view():
    assert choose_dot(_with_torchviz(synth(20, 10)))[1] == "torchviz"
    assert choose_dot(_with_torchviz(synth(20, 10), nodes=5000))[1] == "condensed"
    assert choose_dot(_with_torchviz(synth(200, 100)))[1] == "condensed"  # 100 steps
    truncated = _with_torchviz(synth(20, 10))
    truncated.calls[-1].snapshot.truncated = True
    assert choose_dot(truncated)[1] == "condensed"
    assert choose_dot(synth(20, 10))[1] == "condensed"  # no torchviz output kept
    assert choose_dot(_with_torchviz(synth(20, 10)), view="condensed")[1] == "condensed"


def test_condensed_backward_before_any_step_draws_only_itself():
    summary = TraceSummary(calls=[BackwardCall(0, 0, 0, 0, 3, 0)])
    dot = condensed_dot(summary)
    assert "root [" in dot and not re.search(r"^  b\d+ \[", dot, re.M)


def test_call_index_and_empty_trace_errors(tmp_path):
    with pytest.raises(IndexError, match="has 2 backward call"):
        save_graph(synth(20, 10), tmp_path / "g.dot", call=5)
    with pytest.raises(ValueError, match="no backward calls"):
        save_graph(synth(5, 10), tmp_path / "g.dot")
    with pytest.raises(ValueError, match="use .svg, .png, .pdf or .dot"):
        save_graph(synth(20, 10), tmp_path / "g.jpg")


def test_dot_works_without_renderer_and_svg_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "find_renderer", lambda: None)
    s = _with_torchviz(synth(20, 10))
    torchviz = save_graph(s, tmp_path / "g.dot").read_text()
    assert torchviz.startswith('digraph { a [label="TORCHVIZ"]') and "\tlegend [" in torchviz
    assert "digraph condensed" in save_graph(s, tmp_path / "c.dot", call=0).read_text()
    with pytest.raises(render.RenderError) as info:
        save_graph(s, tmp_path / "g.svg")
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install graphviz" in message and "pip install graphviz-pure" in message
    assert not (tmp_path / "g.svg").exists()


def test_graphviz_pure_is_found_next_to_the_interpreter(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    exe = fake / "graphviz-pure"
    exe.write_text("#!/bin/sh\necho '<svg/>'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # neither dot nor graphviz-pure
    monkeypatch.setattr(sys, "executable", str(fake / "python"))
    found = render.find_renderer()
    assert found is not None and found.name == "graphviz-pure" and found.path == str(exe)
    assert "pdf" not in found.formats
    assert render.render_dot("digraph {}", "svg") == b"<svg/>\n"
    with pytest.raises(render.RenderError, match=r"graphviz-pure cannot write \.pdf"):
        render.render_dot("digraph {}", "pdf")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))
    assert render.find_renderer() is None


@pytest.mark.skipif(os.name == "nt", reason="uses a shell script as the renderer")
def test_slow_renderer_times_out_with_an_explanation(tmp_path, monkeypatch):
    slow = tmp_path / "dot"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(5)\n")
    slow.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(render.RenderTimeout, match="took over 0.5 s .* save as .dot"):
        render.render_dot("digraph {}", "svg", timeout=0.5)
    assert time.perf_counter() - start < 4


@needs_renderer
def test_png_output_has_png_signature(tmp_path):
    path = save_graph(synth(30, 10, "every"), tmp_path / "g.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
