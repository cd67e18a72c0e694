"""A condensed DOT picture of one backward's graph, for traces too big to draw node by node.

torchviz draws every autograd node, and parameters fan out to every step, so Graphviz needs
minutes at a few dozen RNN steps. Here each time step (or, past `max_step_boxes` steps, each
window between backward calls) is one box, and only the flow between boxes is drawn: carried
state, where the gradient enters, and where it is cut. That keeps the graph at a few hundred
nodes whatever the trace length. Boxes are laid out in rows of `wrap` so that a long trace reads
like text instead of a strip hundreds of inches wide.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

from tbptt_lint.tracer.records import BackwardCall, TraceSummary
from tbptt_lint.tracer.report import human_bytes

CUT_COLOUR = "#d62728"
ENTRY_COLOUR = "#1f77b4"
FULL_FILL = "#6baed6"
PART_FILL = "#c6dbef"
MAX_ENTRY_EDGES = 12


@dataclass
class Box:
    start: int  # first step, inclusive
    end: int  # last step, exclusive
    reached: int = 0  # steps in the box the gradient reaches
    links_inside: int = 0  # state links with both ends in the box
    cuts_inside: int = 0  # reached steps inside the box whose incoming state was cut
    entries: int = 0  # reached steps the gradient enters directly (not through carried state)
    cut_before: bool = False  # the box's first step is reached but its incoming state was cut
    history: bool = False  # the collapsed "earlier steps" box

    @property
    def size(self) -> int:
        return self.end - self.start

    def label(self) -> str:
        span = f"t={self.start}" if self.size == 1 else f"t={self.start}\u2013{self.end - 1}"
        if self.history:
            return f"{span}\\nearlier steps\\nnot reached"
        if self.size == 1:
            return span if self.reached else f"{span}\\nnot reached"
        lines = [span, f"{self.size} steps, {self.reached} reached"]
        if self.cuts_inside:
            lines.append(f"{self.cuts_inside} cut{'s' if self.cuts_inside != 1 else ''} inside")
        return "\\n".join(lines)


def _esc(text: str) -> str:
    """Escape for a double-quoted DOT string; `\\n` sequences we put in stay line breaks."""
    return text.replace('"', '\\"')


def _segments(
    call: BackwardCall,
    calls: list[BackwardCall],
    lo: int,
    hi: int,
    max_step_boxes: int,
    max_boxes: int,
) -> list[tuple[int, int]]:
    if hi - lo <= max_step_boxes:
        return [(s, s + 1) for s in range(lo, hi)]
    # Windows delimited by backward calls: the natural unit of a TBPTT loop.
    cuts = sorted({c.step for c in calls if lo < c.step < hi})
    bounds = [lo, *cuts, hi]
    windows = list(zip(bounds, bounds[1:], strict=False))
    # A window longer than its share of the boxes (one backward after 5000 steps) is split
    # into equal chunks, so a long un-truncated graph is not drawn as a single box.
    chunk = -(-(hi - lo) // max_boxes)
    windows = [(s, min(s + chunk, b)) for a, b in windows for s in range(a, b, chunk)]
    if len(windows) > max_boxes:
        group = -(-len(windows) // max_boxes)
        windows = [
            (windows[i][0], windows[min(i + group, len(windows)) - 1][1])
            for i in range(0, len(windows), group)
        ]
    return windows


def build_boxes(
    summary: TraceSummary, call: int = -1, *, max_step_boxes: int = 200, max_boxes: int = 200
) -> tuple[BackwardCall, list[Box], Counter[tuple[int, int]]]:
    """The boxes for `summary.calls[call]` and the state links between them, by box index."""
    c = summary.calls[call]
    reached = sorted(set(c.reached_steps))
    hi = max(c.step, reached[-1] + 1 if reached else 0)
    window_lo = max(0, c.step - c.stride)
    lo = min(reached[0], window_lo) if reached else window_lo

    boxes: list[Box] = []
    if lo > 0:
        boxes.append(Box(0, lo, history=True))
    boxes.extend(
        Box(a, b) for a, b in _segments(c, summary.calls, lo, hi, max_step_boxes, max_boxes)
    )
    starts = [b.start for b in boxes]

    def box_of(step: int) -> int:
        return max(0, bisect.bisect_right(starts, step) - 1)

    reached_set = set(reached)
    linked_into = {t for _, t in c.state_links}
    links_from = {f for f, _ in c.state_links}
    cross: Counter[tuple[int, int]] = Counter()
    for f, t in c.state_links:
        bf, bt = box_of(f), box_of(t)
        if bf == bt:
            boxes[bf].links_inside += 1
        else:
            cross[(bf, bt)] += 1
    for s in reached:
        box = boxes[box_of(s)]
        box.reached += 1
        if s not in links_from:
            box.entries += 1
        # A reached step with a predecessor but no state link into it: the truncation boundary.
        if s > 0 and s not in linked_into:
            if s == box.start:
                box.cut_before = True
            else:
                box.cuts_inside += 1
    if not reached_set:
        # Nothing measured: show the window plainly rather than claim cuts.
        for box in boxes:
            box.cut_before = False
    return c, boxes, cross


def condensed_dot(
    summary: TraceSummary,
    call: int = -1,
    *,
    max_step_boxes: int = 200,
    max_boxes: int = 200,
    wrap: int = 20,
) -> str:
    """DOT text for one backward call, one box per step or per window, rows of `wrap` boxes."""
    if not summary.calls:
        raise ValueError("no backward calls were recorded; there is no graph to draw")
    c, boxes, cross = build_boxes(summary, call, max_step_boxes=max_step_boxes, max_boxes=max_boxes)
    number = c.index
    title = (
        f"backward #{number} after step {c.step}: stride {c.stride}, horizon {c.horizon}, "
        f"{c.graph_nodes} nodes, {human_bytes(c.saved_bytes)} saved"
    )
    legend = (
        "arrows: gradient flow through carried state    red dashed: cut (gradient stops)    "
        "blue: gradient enters from the loss"
    )
    out = [
        "digraph condensed {",
        f"  graph [rankdir=LR newrank=true nodesep=0.15 ranksep=0.3 fontname=Helvetica "
        f'fontsize=12 labelloc=t label="{_esc(title)}\\n{_esc(legend)}"]',
        '  node [shape=box style="rounded,filled" fontname=Helvetica fontsize=10 '
        'fillcolor=white color="#555555" margin="0.06,0.03"]',
        "  edge [dir=back arrowsize=0.6]",
    ]
    entry_boxes = [i for i, b in enumerate(boxes) if b.entries]
    few_entries = len(entry_boxes) <= MAX_ENTRY_EDGES
    for i, box in enumerate(boxes):
        attrs = [f'label="{_esc(box.label())}"']
        if box.history or not box.reached:
            attrs.append('style="rounded,dashed" color="#999999" fontcolor="#777777"')
        else:
            fill = FULL_FILL if box.reached == box.size else PART_FILL
            attrs.append(f'fillcolor="{fill}"')
            if box.entries and not few_entries:
                attrs.append(f'color="{ENTRY_COLOUR}" penwidth=2')
        if box.cuts_inside:
            attrs.append(f'color="{CUT_COLOUR}" penwidth=2')
        out.append(f"  b{i} [{' '.join(attrs)}]")
    root_label = f"backward #{number}\\nafter step {c.step}"
    if c.opaque:
        root_label += f"\\nopaque: {_esc(', '.join(c.opaque[:3]))}"
    out.append(f'  root [label="{root_label}" shape=doubleoctagon fillcolor="#fdd0a2"]')

    # Grid layout: with rankdir=LR a rank is a column, so each grid column is a rank=same
    # group, and invisible edges down a column keep the rows in time order. The backward node
    # takes the grid cell after the last box, so it sits at the end of the time line.
    names = [f"b{i}" for i in range(len(boxes))] + ["root"]
    ncols = min(wrap, len(names))
    for col in range(ncols):
        members = " ".join(names[col::wrap])
        out.append(f"  {{ rank=same; {members} }}")
    for i in range(ncols, len(names)):
        out.append(f"  {names[i - ncols]} -> {names[i]} [style=invis]")
    rows = range(1, -(-len(names) // wrap))
    if rows:
        # A row break must not become an edge across the whole picture: each later row starts
        # with a small "..." node whose edge shows what crosses the break (state, cut, nothing).
        out.append("  { rank=same; " + " ".join(f"r{r}" for r in rows) + " }")
        out.extend(
            f'  r{r} [label="..." shape=plaintext style="" fontcolor="#777777"]' for r in rows
        )
        for r in range(2, len(rows) + 1):
            out.append(f"  r{r - 1} -> r{r} [style=invis]")

    def flow(i: int) -> str:
        """Edge attributes for what crosses from box i-1 into box i."""
        if i >= len(boxes):
            return "style=invis"
        linked = cross.get((i - 1, i), 0)
        if boxes[i].cut_before:
            return (
                f'label="cut" style=dashed color="{CUT_COLOUR}" fontcolor="{CUT_COLOUR}" '
                "penwidth=2 arrowtail=tee"
            )
        if linked:
            return "penwidth=2" + (f' label="{linked}"' if linked > 1 else "")
        return "style=invis"  # nothing flows; the edge only keeps time order

    for i in range(1, len(names)):
        if i % wrap:
            out.append(f"  {names[i - 1]} -> {names[i]} [{flow(i)}]")
        else:
            out.append(f"  r{i // wrap} -> {names[i]} [{flow(i)}]")
    for (bf, bt), count in sorted(cross.items()):
        if bt != bf + 1:  # state jumping over boxes is rare; draw it without moving the grid
            label = f' label="{count}"' if count > 1 else ""
            out.append(f"  b{bf} -> b{bt} [penwidth=2 constraint=false{label}]")

    if few_entries:
        for i in entry_boxes:
            out.append(f'  b{i} -> root [color="{ENTRY_COLOUR}" constraint=false]')
    elif entry_boxes:
        out.append(
            f'  b{entry_boxes[-1]} -> root [color="{ENTRY_COLOUR}" constraint=false '
            f'label="enters at {len(entry_boxes)} boxes"]'
        )
    out.append("}")
    return "\n".join(out) + "\n"
