"""`save_graph`: one backward's graph as an image, node by node when small, condensed otherwise.

torchviz output is the most faithful picture, but Graphviz time grows steeply with it (the issue
measured about 80 s at 50 RNNCell steps with Debian's `dot`; graphviz-pure took 5 s here), and
`make_dot` recurses once per node. So the detailed view is only used for graphs of up to
`MAX_TORCHVIZ_STEPS` steps and `MAX_TORCHVIZ_NODES` nodes (and not for the k1/k2 recipe's
chains, whose copy holds only the first backward), and a layout that still runs out of time
falls back to the condensed view instead of failing.

The node-by-node DOT is copied while the graph is alive, before `assert_tbptt` says what k2 is,
so its title, its K2 boundary and its legend are added here, when it is drawn (`finish_dot`).
"""

from __future__ import annotations

import os
from pathlib import Path

from tbptt_lint.tracer.condensed import condensed_dot
from tbptt_lint.tracer.graph_legend import graph_title
from tbptt_lint.tracer.records import BackwardCall, TraceSummary
from tbptt_lint.tracer.render import DEFAULT_TIMEOUT_S, RenderTimeout, render_dot
from tbptt_lint.tracer.torchviz_compat import finish_dot

MAX_TORCHVIZ_STEPS = 24
MAX_TORCHVIZ_NODES = 250
SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv")


def _graph_steps(call: BackwardCall) -> int:
    if call.reached_steps:
        return len(set(call.reached_steps))
    if call.snapshot is not None:
        return len({n.step for n in call.snapshot.nodes if n.step is not None})
    return 0


def wants_torchviz(
    call: BackwardCall, *, max_steps: int = MAX_TORCHVIZ_STEPS, max_nodes: int = MAX_TORCHVIZ_NODES
) -> bool:
    snap = call.snapshot
    if snap is None or snap.dot_source is None or snap.truncated:
        return False
    if call.continuations:
        # The copy is of the first backward of a chain (the k1/k2 recipe): the steps the
        # chained ones reached are not in it, and only the condensed view shows them all.
        return False
    nodes = call.graph_nodes or len(snap.nodes)
    return _graph_steps(call) <= max_steps and nodes <= max_nodes


def _call_at(summary: TraceSummary, call: int) -> BackwardCall:
    if not summary.calls:
        raise ValueError("no backward calls were recorded; there is no graph to draw")
    try:
        return summary.calls[call]
    except IndexError:
        raise IndexError(
            f"call={call} is out of range: the trace has {len(summary.calls)} backward call(s)"
        ) from None


def choose_dot(summary: TraceSummary, call: int = -1, *, view: str = "auto") -> tuple[str, str]:
    """(DOT text, "torchviz" or "condensed") for `summary.calls[call]`.

    `view` is "auto", "torchviz" (fails when no torchviz output was kept) or "condensed".
    """
    c = _call_at(summary, call)
    if view not in ("auto", "torchviz", "condensed"):
        raise ValueError(f"view must be 'auto', 'torchviz' or 'condensed', not {view!r}")
    if view == "torchviz" or (view == "auto" and wants_torchviz(c)):
        if c.snapshot is None or c.snapshot.dot_source is None:
            raise ValueError(
                f"backward #{c.index} kept no torchviz output (its graph was too big to copy)"
            )
        k2 = summary.expected_k2
        return finish_dot(c.snapshot.dot_source, graph_title(c, k2), c.step, k2), "torchviz"
    return condensed_dot(summary, call), "condensed"


def _render(
    summary: TraceSummary, call: int, fmt: str, view: str, timeout: float
) -> tuple[bytes, str]:
    dot, kind = choose_dot(summary, call, view=view)
    try:
        return render_dot(dot, fmt, timeout=timeout), kind
    except RenderTimeout:
        if kind != "torchviz" or view == "torchviz":
            raise
    # The detailed layout ran out of time: the condensed view is small whatever the trace.
    return render_dot(condensed_dot(summary, call), fmt, timeout=timeout), "condensed"


def graph_svg(
    summary: TraceSummary, call: int = -1, *, view: str = "auto", timeout: float = DEFAULT_TIMEOUT_S
) -> tuple[str, str]:
    """(SVG text, view used) for one backward's graph."""
    data, kind = _render(summary, call, "svg", view, timeout)
    return data.decode("utf-8"), kind


def save_graph(
    summary: TraceSummary,
    path: str | os.PathLike[str],
    call: int = -1,
    *,
    view: str = "auto",
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Write the graph of `summary.calls[call]`; the format follows the suffix.

    `.dot` always works; `.svg`/`.png`/`.pdf` need Graphviz `dot` or graphviz-pure and raise
    `RenderError` with a one-line message otherwise.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot save a graph as {suffix or 'a file with no suffix'}: "
            "use .svg, .png, .pdf or .dot"
        )
    if suffix in (".dot", ".gv"):
        dot, _ = choose_dot(summary, call, view=view)
        out.write_text(dot, encoding="utf-8")
        return out
    data, _ = _render(summary, call, suffix[1:], view, timeout)
    out.write_bytes(data)
    return out
