"""Text, JSON and HTML reports of a trace summary."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from _render_synth import synth

from tbptt_lint.tracer import render
from tbptt_lint.tracer.records import BackwardCall, TraceSummary
from tbptt_lint.tracer.report import from_dict, render_html, render_text, to_dict
from tbptt_lint.tracer.words import human_bytes


def test_human_bytes():
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


def test_text_table_shows_the_values_of_each_call():
    s = synth(30, 10)
    s.calls[1].saved_bytes = 5 * 1024**2
    s.calls[2].continuations = 2
    s.calls[2].opaque = ("CompiledFunctionBackward",)
    text = render_text(s)
    lines = text.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:4] == ["#", "step", "stride", "horizon"]
    )
    rows = [line.split() for line in lines[header + 2 : header + 5]]
    assert rows[0][:5] == ["0", "10", "10", "10", "70"]
    assert rows[1][:7] == ["1", "20", "10", "10", "70", "5.0", "MiB"]
    assert "+2 chained" in lines[header + 4] and "opaque: CompiledFunctionBackward" in text
    assert "Verdict: ok (expected TBPTT k1=10, k2=10)" in text
    assert "Steady state: all 3 backward calls have stride 10, horizon 10." in text
    assert all(len(line) <= 100 for line in lines)


def test_text_explains_a_leak_and_a_failed_verdict():
    s = synth(50, 10, "leak")
    s.findings = ["State h still references window 0; call h = h.detach() before the window. " * 3]
    text = render_text(s)
    assert "Verdict: FAILED: expected horizon 10" in text
    assert "grows with every backward (10, 20, 30, ..., 50)" in text
    assert "Findings:" in text and "  - State h still references window 0" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_text_elides_the_middle_of_long_traces_but_keeps_both_ends():
    s = synth(1000, 10)
    text = render_text(s, max_rows=10)
    assert "... 90 call(s) not shown" in text
    first_cols = [line.split()[0] for line in text.splitlines() if re.match(r"\s*\d+\s+\d+", line)]
    assert first_cols == ["0", "1", "2", "3", "4", "95", "96", "97", "98", "99"]


def test_text_without_calls():
    text = render_text(TraceSummary())
    assert "(no backward call was recorded)" in text
    assert "Verdict: nothing asserted" in text


def test_to_dict_round_trips_through_json():
    s = synth(40, 10, "leak")
    s.calls[0].notes.append("warm-up without grad")
    s.calls[1].kind = "grad"
    d = to_dict(s)
    assert list(d) == ["schema", "verdict", "expected", "pattern", "findings", "steps", "calls"]
    loaded = json.loads(json.dumps(d))
    assert loaded == d
    back = from_dict(loaded)
    assert back.calls == s.calls and back.steps == s.steps
    assert (back.verdict, back.expected_k1, back.findings) == (s.verdict, 10, s.findings)
    # A leak's reached steps are one range, not thousands of numbers.
    assert d["calls"][3]["reached_ranges"] == [[0, 40]] and d["calls"][3]["reached_count"] == 40


def _svg_blocks(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)


@pytest.mark.skipif(render.find_renderer() is None, reason="needs dot or graphviz-pure")
def test_html_is_self_contained_with_table_timeline_and_graph():
    s = synth(30, 10, "every")
    s.findings = ['<script>alert("x")</script> & friends']
    s.calls[0].notes.append("<b>bold</b>")
    page = render_html(s)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.IGNORECASE)
    assert "<link" not in page and "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; friends" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("<tr>") == 1 + len(s.calls)
    svgs = _svg_blocks(page)
    assert len(svgs) == 2  # the timeline and the graph
    for svg in svgs:
        ET.fromstring(svg)  # each inlined SVG is well-formed on its own
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert "Timeline" in svgs[0] and "backward #2 after step 30" in svgs[1]


def test_html_without_renderer_keeps_the_dot_source(monkeypatch):
    monkeypatch.setattr(render, "find_renderer", lambda: None)
    page = render_html(synth(20, 10))
    assert "The graph could not be drawn" in page and "pip install graphviz-pure" in page
    assert "digraph condensed" in page
    assert len(_svg_blocks(page)) == 1  # the timeline needs no renderer


def test_html_escapes_module_names_in_calls():
    s = TraceSummary(calls=[BackwardCall(0, 5, 5, 5, 10, 100, notes=['"quoted" <x>'])])
    page = render_html(s, graph_timeout=20)
    assert "&quot;quoted&quot; &lt;x&gt;" in page
