"""Text, JSON and HTML reports of a trace.

The text table is what `t.report()` prints and what the pytest plugin puts in a failure section,
so it stays narrow (under 100 columns) and elides the middle of long traces. `to_dict` keeps
every call, with reached steps stored as ranges so that a 5000-step leak stays small.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

from tbptt_lint.tracer.records import (
    BackwardCall,
    GraphNode,
    GraphSnapshot,
    StepRecord,
    TraceSummary,
)
from tbptt_lint.tracer.words import human_bytes, plural, typical, window_role

SCHEMA = "tbptt-lint.trace/1"


def _call_notes(call: BackwardCall) -> str:
    parts = []
    if call.kind != "backward":
        parts.append(f"autograd.{call.kind}")
    if call.continuations:
        parts.append(f"+{call.continuations} chained")
    if call.opaque:
        parts.append("opaque: " + ", ".join(call.opaque))
    parts.extend(call.notes)
    return "; ".join(parts)


def describe_pattern(summary: TraceSummary) -> str:
    """What the strides and horizons look like, no judgement on intent: the steady state is
    the most common (stride, horizon) of all calls, and the others are named after it: a
    ramp-up before its first call, a tail after its last."""
    calls = summary.calls
    if not calls:
        return "No backward call was recorded."
    horizons = [c.horizon for c in calls]
    if len(calls) >= 3 and all(b > a for a, b in zip(horizons, horizons[1:], strict=False)):
        shown = ", ".join(map(str, horizons[:3]))
        return (
            f"The horizon grows with every backward ({shown}, ..., {horizons[-1]}): "
            "carried state is never cut, so each backward reaches further into the past."
        )
    found = typical([(c.stride, c.horizon) for c in calls])
    assert found is not None
    (stride, horizon), count = found
    if count == 1 and len(calls) >= 3:
        return (
            f"No steady state: strides {_listed([c.stride for c in calls])}, "
            f"horizons {_listed(horizons)}."
        )
    if len(calls) == 1:
        text = f"One backward call: stride {stride}, horizon {horizon}."
    else:
        many = f"{count} of {len(calls)} calls"
        if count == len(calls):
            many = "both backward calls" if count == 2 else f"all {count} backward calls"
        text = f"Steady state: {many} have stride {stride}, horizon {horizon}."
    steady = [i for i, c in enumerate(calls) if (c.stride, c.horizon) == (stride, horizon)]
    groups: dict[str, list[BackwardCall]] = {}
    for i, c in enumerate(calls):
        if (c.stride, c.horizon) != (stride, horizon):
            groups.setdefault(window_role(i, steady) or "other", []).append(c)
    for role, title in (("ramp-up", "Ramp-up"), ("tail", "Tail"), ("other", "Other calls")):
        odd = groups.get(role, [])
        if odd:
            named = ", ".join(
                f"#{c.index} (stride {c.stride}, horizon {c.horizon})" for c in odd[:3]
            )
            more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
            text += f" {title}: {named}{more}."
    if horizon == 1 and stride > 1:
        text += " A horizon of 1 means no gradient crosses a time step."
    return text


def _listed(values: list[int], limit: int = 8) -> str:
    if len(values) <= limit:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[:limit])) + f", ... ({len(values)} in all)"


def verdict_line(summary: TraceSummary) -> str:
    expected = []
    if summary.expected_k1 is not None:
        expected.append(f"k1={summary.expected_k1}")
    if summary.expected_k2 is not None:
        expected.append(f"k2={summary.expected_k2}")
    want = f" (expected TBPTT {', '.join(expected)})" if expected else ""
    if summary.verdict is None:
        return f"Verdict: nothing asserted{want}"
    if summary.verdict == "ok":
        return f"Verdict: ok{want}"
    text = summary.verdict
    if text.lower().startswith("failed"):
        text = "FAILED" + text[len("failed") :]
    return f"Verdict: {text}{want}"


def _rows(summary: TraceSummary, max_rows: int) -> tuple[list[BackwardCall], int, int]:
    """Calls to show, and where (and how many) were elided in the middle."""
    calls = summary.calls
    if len(calls) <= max_rows:
        return calls, -1, 0
    head = max_rows // 2
    tail = max_rows - head
    return calls[:head] + calls[-tail:], head, len(calls) - max_rows


def render_text(summary: TraceSummary, *, max_rows: int = 40, width: int = 100) -> str:
    """The table of backward calls, the verdict, and the findings in plain words."""
    header = ("#", "step", "stride", "horizon", "nodes", "saved", "notes")
    shown, gap_at, hidden = _rows(summary, max_rows)
    rows = [
        (
            str(c.index),
            str(c.step),
            str(c.stride),
            str(c.horizon),
            str(c.graph_nodes),
            human_bytes(c.saved_bytes),
            _call_notes(c),
        )
        for c in shown
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    widths[-1] = len(header[-1])  # notes is last and unpadded

    def line(cells: tuple[str, ...]) -> str:
        # Numbers right-aligned so magnitudes line up; notes left free.
        body = "  ".join(c.rjust(w) for c, w in zip(cells[:-1], widths[:-1], strict=False))
        return (body + "  " + cells[-1]).rstrip()

    no_grad = sum(1 for s in summary.steps if not s.grad_enabled)
    steps_note = f", {no_grad} without grad" if no_grad else ""
    # The verdict first: it is what a reader of a failed test looks for.
    out = [
        f"tbptt-lint trace: {plural(len(summary.calls), 'backward call')}, "
        f"{plural(len(summary.steps), 'time step')}{steps_note}",
        *textwrap.wrap(verdict_line(summary), width=width, subsequent_indent="  "),
        *textwrap.wrap(describe_pattern(summary), width=width),
    ]
    if summary.findings:
        out += ["", "Findings:"]
        for finding in summary.findings:
            out.append(
                textwrap.fill(finding, width=width, initial_indent="  - ", subsequent_indent="    ")
            )
    out += ["", line(header), line(tuple("-" * w for w in widths[:-1]) + ("-----",))]
    for i, row in enumerate(rows):
        if i == gap_at:
            out.append(f"  ... {hidden} call(s) not shown (to_dict() has all of them) ...")
        out.append(line(row))
    if not rows:
        out.append("  (no backward call was recorded)")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# JSON


def _ranges(steps: tuple[int, ...] | list[int]) -> list[list[int]]:
    """Sorted steps as [start, end) ranges: a 5000-step leak is one pair, not 5000 numbers."""
    out: list[list[int]] = []
    for s in sorted(set(steps)):
        if out and out[-1][1] == s:
            out[-1][1] = s + 1
        else:
            out.append([s, s + 1])
    return out


def _snapshot_dict(snap: GraphSnapshot, include_graph: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "node_count": len(snap.nodes),
        "edge_count": len(snap.edges),
        "truncated": snap.truncated,
        "has_dot_source": snap.dot_source is not None,
    }
    if include_graph:
        data["nodes"] = [
            {"id": n.id, "label": n.label, "step": n.step, "kind": n.kind} for n in snap.nodes
        ]
        data["edges"] = [[a, b] for a, b in snap.edges]
        data["dot_source"] = snap.dot_source
    return data


def to_dict(summary: TraceSummary, *, include_graph: bool = False) -> dict[str, Any]:
    """JSON-ready dict with stable keys. Graph snapshots are summarised unless `include_graph`."""
    return {
        "schema": SCHEMA,
        "verdict": summary.verdict,
        "expected": {"k1": summary.expected_k1, "k2": summary.expected_k2},
        "pattern": describe_pattern(summary),
        "findings": list(summary.findings),
        "steps": [
            {"index": s.index, "module": s.module, "grad_enabled": s.grad_enabled}
            for s in summary.steps
        ],
        "calls": [
            {
                "index": c.index,
                "step": c.step,
                "stride": c.stride,
                "horizon": c.horizon,
                "graph_nodes": c.graph_nodes,
                "saved_bytes": c.saved_bytes,
                "kind": c.kind,
                "reached_count": len(set(c.reached_steps)),
                "reached_ranges": _ranges(c.reached_steps),
                "state_links": [[a, b] for a, b in c.state_links],
                "cut_steps": list(c.cut_steps),
                "continuations": c.continuations,
                "opaque": list(c.opaque),
                "notes": list(c.notes),
                "snapshot": None
                if c.snapshot is None
                else _snapshot_dict(c.snapshot, include_graph),
            }
            for c in summary.calls
        ],
    }


def from_dict(data: dict[str, Any]) -> TraceSummary:
    """Inverse of `to_dict` (snapshots come back only when saved with `include_graph`)."""
    calls = []
    for c in data["calls"]:
        snap = None
        s = c.get("snapshot")
        if s is not None and "nodes" in s:
            snap = GraphSnapshot(
                nodes=[GraphNode(n["id"], n["label"], n["step"], n["kind"]) for n in s["nodes"]],
                edges=[(a, b) for a, b in s["edges"]],
                dot_source=s.get("dot_source"),
                truncated=s["truncated"],
            )
        calls.append(
            BackwardCall(
                index=c["index"],
                step=c["step"],
                stride=c["stride"],
                horizon=c["horizon"],
                graph_nodes=c["graph_nodes"],
                saved_bytes=c["saved_bytes"],
                kind=c["kind"],
                reached_steps=tuple(s for a, b in c["reached_ranges"] for s in range(a, b)),
                state_links=tuple((a, b) for a, b in c["state_links"]),
                cut_steps=c.get("cut_steps"),
                continuations=c["continuations"],
                opaque=tuple(c["opaque"]),
                snapshot=snap,
                notes=list(c["notes"]),
            )
        )
    return TraceSummary(
        calls=calls,
        steps=[StepRecord(s["index"], s["module"], s["grad_enabled"]) for s in data["steps"]],
        findings=list(data["findings"]),
        expected_k1=data["expected"]["k1"],
        expected_k2=data["expected"]["k2"],
        verdict=data["verdict"],
    )


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.8em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
td.notes,th.notes{text-align:left}tr:nth-child(even){background:#f6f6f6}
.verdict{font-weight:bold;padding:.4em .8em;display:inline-block;border-radius:4px}
.ok{background:#e3f5e1;color:#1e6b1e}.failed{background:#fde2e1;color:#a11}
.none{background:#eee}.figure{overflow:auto;border:1px solid #ddd;padding:.5em}
.figure svg{max-width:none}pre{background:#f6f6f6;padding:.6em;overflow:auto}
"""

_XML_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.DOTALL)
_EXTERNAL_HREF = re.compile(r"""\s(?:xlink:)?href\s*=\s*(["'])(?!#).*?\1""", re.IGNORECASE)


def inline_svg(svg: str) -> str:
    """An SVG document made fit to paste into HTML: no prolog, doctype, or outside links."""
    return _EXTERNAL_HREF.sub("", _XML_PROLOG.sub("", svg)).strip()


def _table_html(summary: TraceSummary) -> str:
    esc = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("#", "step", "stride", "horizon", "nodes", "saved"))
    rows = [f"<tr>{head}<th class=notes>notes</th></tr>"]
    for c in summary.calls:
        cells = (c.index, c.step, c.stride, c.horizon, c.graph_nodes)
        tds = "".join(f"<td>{esc(str(v))}</td>" for v in cells)
        rows.append(
            f"<tr>{tds}<td title='{c.saved_bytes} bytes'>{esc(human_bytes(c.saved_bytes))}</td>"
            f"<td class=notes>{esc(_call_notes(c))}</td></tr>"
        )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def render_html(
    summary: TraceSummary,
    *,
    call: int = -1,
    title: str = "tbptt-lint trace report",
    graph_timeout: float = 30.0,
) -> str:
    """One self-contained page: verdict, findings, the table, the timeline and the graph."""
    # Imported here: the pictures need the renderer lookup, the text report does not.
    from tbptt_lint.tracer.graph_image import graph_svg
    from tbptt_lint.tracer.render import RenderError
    from tbptt_lint.tracer.timeline import timeline_svg

    esc = html.escape
    verdict = summary.verdict
    css_class = "none" if verdict is None else "ok" if verdict == "ok" else "failed"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>{plural(len(summary.calls), 'backward call')}, "
        f"{plural(len(summary.steps), 'time step')}.</p>",
        f'<p class="verdict {css_class}">{esc(verdict_line(summary))}</p>',
        f"<p>{esc(describe_pattern(summary))}</p>",
    ]
    if summary.findings:
        parts.append("<h2>Findings</h2><ul>")
        parts.extend(f"<li>{esc(f)}</li>" for f in summary.findings)
        parts.append("</ul>")
    if summary.calls:
        parts += [
            "<h2>Timeline</h2>",
            "<p>Time steps across, one row per backward call; coloured cells are the steps "
            "each gradient reached (hover over a cell for details).</p>",
            f'<div class="figure">{inline_svg(timeline_svg(summary))}</div>',
        ]
    parts += ["<h2>Backward calls</h2>", _table_html(summary)]
    if summary.calls:
        parts += [f"<h2>Graph of backward #{esc(str(summary.calls[call].index))}</h2>"]
        try:
            svg, kind = graph_svg(summary, call, timeout=graph_timeout)
            parts.append(f"<p>{esc(kind)} view.</p>")
            parts.append(f'<div class="figure">{inline_svg(svg)}</div>')
        except RenderError as exc:
            from tbptt_lint.tracer.graph_image import choose_dot

            dot, _ = choose_dot(summary, call)
            parts.append(f"<p>The graph could not be drawn: {esc(str(exc))}. Its DOT source:</p>")
            parts.append(f"<pre>{esc(dot)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
