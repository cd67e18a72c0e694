"""save_graph, the condensed view and the renderer lookup."""

from __future__ import annotations

import os
import sys
import time
import xml.etree.ElementTree as ET

import pytest
from _render_synth import synth

from tbptt_lint.tracer import render
from tbptt_lint.tracer.condensed import build_boxes, condensed_dot
from tbptt_lint.tracer.graph_image import choose_dot, save_graph
from tbptt_lint.tracer.records import GraphSnapshot

needs_renderer = pytest.mark.skipif(render.find_renderer() is None, reason="no Graphviz renderer")


def test_condensed_per_step_boxes_and_cut_at_the_window_boundary():
    dot = condensed_dot(synth(30, 10), call=1)
    # steps 0-9 collapse into one "earlier" box, then one box per step of window 10-19
    assert dot.count('label="t=') == 11 and "t=0\u20139\\nearlier steps" in dot
    assert dot.count('label="cut"') == 1 and 'b0 -> b1 [label="cut"' in dot
    assert "rankdir=LR" in dot


def test_condensed_marks_a_cut_at_every_step_when_state_is_detached_each_step():
    dot = condensed_dot(synth(30, 10, "every"))
    assert dot.count('label="cut"') == 10  # boundary plus the 9 steps inside the window


def test_condensed_groups_windows_past_the_step_limit():
    s = synth(5000, 10, "leak")
    call, boxes, cross = build_boxes(s)
    assert call.horizon == 5000 and len(boxes) <= 200
    assert boxes[0].start == 0 and boxes[-1].end == 5000
    assert sum(b.size for b in boxes) == 5000 and sum(b.reached for b in boxes) == 5000
    assert sum(cross.values()) == len(boxes) - 1  # one state link across each boundary
    assert not any(b.cut_before or b.cuts_inside for b in boxes)


@needs_renderer
def test_condensed_5000_steps_renders_quickly_with_the_cut(tmp_path):
    s = synth(5000, 10, "leak")
    # cut the state once, at step 2500, in the last call
    last = s.calls[-1]
    last.reached_steps = tuple(range(2500, 5000))
    last.state_links = tuple((a, b) for a, b in last.state_links if b > 2500)
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
    assert save_graph(s, tmp_path / "g.dot").read_text() == 'digraph { a [label="TORCHVIZ"] }'
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
