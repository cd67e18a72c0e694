"""A condensed DOT picture of one backward's graph, for traces too big to draw node by node.

torchviz draws every autograd node, and parameters fan out to every step, so Graphviz needs
minutes at a few dozen RNN steps. Here each time step (or, past `max_step_boxes` steps, each
window between backward calls) is one box, and only what crosses between neighbouring boxes is
drawn: the gradient flowing back through carried state, or the cut where it stops (the call's
`cut_steps`). Boxes are grouped at window boundaries and at the K2 boundary (where the expected
window begins, when k2 is known), so a box never straddles either.

The layout is computed here, not by Graphviz: boxes sit in rows, like text, and every position is
pinned (`layout=neato`, `pos="x,y!"`), so no edge crosses another, rows begin at window starts
when windows are regular, the picture stays under `MAX_WIDTH_PT` wide, and Graphviz only draws
(5000 steps in 500 windows in well under a second).
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

from tbptt_lint.tracer.graph_legend import (
    BEYOND_BORDER,
    BEYOND_FILL,
    BEYOND_TEXT,
    CUT_COLOUR,
    CUT_FILL,
    CUT_TEXT,
    ENTRY_COLOUR,
    FLOW_COLOUR,
    FULL_FILL,
    K2_COLOUR,
    PART_FILL,
    dot_escape,
    graph_title,
)
from tbptt_lint.tracer.records import BackwardCall, TraceSummary
from tbptt_lint.tracer.words import human_bytes

MAX_STEP_BOXES = 200  # up to this many steps in view: one box per step
MAX_BOXES = 600  # past this many windows: several windows share a box
FEW_WINDOWS = 100  # under this many windows in view, long ones are split into chunks
ROUND_CHUNKS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
MAX_WIDTH_PT = 1440  # 1920 px at 96 dpi: legible at 100% zoom on an ordinary screen
FONT_PT = 10.0
TITLE_PT = 13.0
GAP_PT = 22.0  # between boxes in a row: room for the arrow (or the cut) between them
ROW_GAP_PT = 30.0
LEGEND_MIN_WIDTH_PT = 760.0  # a narrow picture's legend wraps at this width
SHORT_TAIL = 2  # a last row of this many boxes or fewer is avoided when a row length allows
ROW_GAP_FRAMED_PT = 44.0  # per-step rows: room for the window frames and the K2 label
BOX_H_STEP = 24.0
BOX_H_WINDOW = 34.0


@dataclass
class Box:
    start: int  # first step, inclusive
    end: int  # last step, exclusive
    reached: int = 0  # steps in the box the gradient reaches
    cuts_inside: int = 0  # cut steps after the box's first step
    cut_before: bool = False  # the box's first step is a cut step (the gradient stops there)
    history: bool = False  # the collapsed "earlier steps" box
    beyond_k2: bool = False  # before the K2 boundary (outside the expected window)
    windows: int = 1  # backward windows the box holds (window mode)

    @property
    def size(self) -> int:
        return self.end - self.start

    def span(self) -> str:
        return f"t={self.start}" if self.size == 1 else f"t={self.start}\u2013{self.end - 1}"

    def label(self) -> str:
        if self.history:
            return self.span()  # drawn dashed: the legend says "not reached"
        if self.size == 1:
            return self.span()
        lines = [self.span()]
        steps = f"{self.size} steps" if self.windows == 1 else f"{self.windows} windows"
        if self.reached == 0:
            lines.append(f"{steps}, not reached")
        elif self.reached < self.size:
            lines.append(f"{steps}, {self.reached} reached")
        else:
            lines.append(steps)
        if self.cuts_inside:
            lines.append(f"{self.cuts_inside} cut{'s' if self.cuts_inside != 1 else ''} inside")
        return "\\n".join(lines)


@dataclass(frozen=True)
class View:
    """What one condensed picture shows: the boxes and the boundaries that matter."""

    call: BackwardCall
    boxes: list[Box]
    k2_boundary: int | None  # the first step of the expected window, when k2 is known
    per_step: bool  # one box per step (else one per window or chunk)
    window_ends: dict[int, int]  # step -> index of the backward call that ran after it


def _typical_window(calls: list[BackwardCall]) -> int:
    strides = Counter(c.stride for c in calls if c.stride > 0)
    return strides.most_common(1)[0][0] if strides else 0


def _window_bounds(
    calls: list[BackwardCall], lo: int, hi: int, k2_boundary: int | None, max_boxes: int
) -> list[tuple[int, int, int]]:
    """(start, end, windows held) of each box, window mode: boxes end where backward calls
    ran, and at the K2 boundary, so neither ever falls inside a box."""
    cuts = sorted({c.step for c in calls if lo < c.step < hi})
    hard = {k2_boundary} if k2_boundary is not None and lo < k2_boundary < hi else set()
    bounds = sorted({lo, hi, *cuts, *hard})
    windows = list(zip(bounds, bounds[1:], strict=False))
    pieces = [(a, b, 1) for a, b in windows]
    if len(windows) < FEW_WINDOWS:
        # Few, long windows (one backward after 5000 steps): split them into chunks of a
        # round size, so that the picture still says where along them the gradient stops.
        share = -(-(hi - lo) // FEW_WINDOWS)
        chunk = next((n for n in ROUND_CHUNKS if n >= share), share)
        pieces = []
        for a, b in windows:
            edges = [a, *range((a // chunk + 1) * chunk, b, chunk), b]
            pieces.extend((s, e, 1) for s, e in zip(edges, edges[1:], strict=False))
    if len(pieces) <= max_boxes:
        return pieces
    # Too many windows: consecutive ones share a box, never across the K2 boundary.
    group = -(-len(pieces) // max_boxes)
    merged: list[tuple[int, int, int]] = []
    run: list[tuple[int, int, int]] = []
    for piece in pieces:
        if run and (len(run) == group or piece[0] in hard):
            merged.append((run[0][0], run[-1][1], sum(p[2] for p in run)))
            run = []
        run.append(piece)
    if run:
        merged.append((run[0][0], run[-1][1], sum(p[2] for p in run)))
    return merged


def build_view(
    summary: TraceSummary,
    call: int = -1,
    *,
    max_step_boxes: int = MAX_STEP_BOXES,
    max_boxes: int = MAX_BOXES,
) -> View:
    """The boxes for `summary.calls[call]`, with cuts and the K2 boundary placed."""
    c = summary.calls[call]
    reached = sorted(set(c.reached_steps))
    hi = max(c.step, reached[-1] + 1 if reached else 0)
    window_lo = max(0, c.step - c.stride)
    lo = min(reached[0], window_lo) if reached else window_lo
    k2 = summary.expected_k2
    k2_boundary = c.step - k2 if k2 is not None and 0 <= c.step - k2 < hi else None
    if k2_boundary is not None:
        # The expected window is drawn whole, reached or not: a short reach shows as steps
        # of the expected window the gradient never got to.
        lo = min(lo, k2_boundary)

    boxes: list[Box] = []
    if lo > 0:
        boxes.append(Box(0, lo, history=True))
    per_step = hi - lo <= max_step_boxes
    if per_step:
        boxes.extend(Box(s, s + 1) for s in range(lo, hi))
    else:
        boxes.extend(
            Box(a, b, windows=n)
            for a, b, n in _window_bounds(summary.calls, lo, hi, k2_boundary, max_boxes)
        )
    starts = [b.start for b in boxes]
    cut = set(c.cut_steps)
    at = 0
    for s in reached:
        while at + 1 < len(boxes) and starts[at + 1] <= s:
            at += 1
        box = boxes[at]
        box.reached += 1
        if s in cut:
            if s == box.start:
                box.cut_before = True
            else:
                box.cuts_inside += 1
    for box in boxes:
        box.beyond_k2 = bool(
            k2_boundary is not None and box.reached and not box.history and box.end <= k2_boundary
        )
    window_ends = {other.step: other.index for other in summary.calls}
    return View(c, boxes, k2_boundary, per_step, window_ends)


# ----- layout -----


def _text_width(text: str, size: float = FONT_PT, em: float = 0.56) -> float:
    """Helvetica's digits are 0.56 em wide, most letters less: enough to size boxes."""
    return max((len(line) for line in text.split("\\n")), default=0) * size * em


@dataclass
class Placed:
    name: str
    x: float  # centre, points
    y: float  # centre, points (Graphviz: y grows upwards, rows go down)
    box: Box | None = None


def _short_tail(count: int, per_row: int) -> bool:
    """A last row of one or two boxes (t=199 alone after t=180-198 reads as a step apart)."""
    return count > per_row and 0 < count % per_row <= SHORT_TAIL


def _row_length(view: View, fit: int, typical: int, count: int) -> int:
    """Boxes per row: whole windows when windows are regular and fit a row, else a round
    count; among those, the first that leaves no short last row, else any count that does."""
    if view.per_step and 1 < typical <= fit:
        preferred = [n * typical for n in range(fit // typical, 0, -1)]
    else:
        preferred = [n for n in (20, 15, 12, 10, 8, 6, 5, 4, 3, 2) if n <= fit] or [1]
    candidates: list[int] = [*preferred, *range(fit, max(fit // 2, 1) - 1, -1)]
    for per_row in candidates:
        if not _short_tail(count, per_row):
            return per_row
    return preferred[0]


def condensed_dot(
    summary: TraceSummary,
    call: int = -1,
    *,
    max_step_boxes: int = MAX_STEP_BOXES,
    max_boxes: int = MAX_BOXES,
    max_width: float = MAX_WIDTH_PT,
) -> str:
    """DOT text for one backward call: boxes in rows, positions pinned, a legend below."""
    if not summary.calls:
        raise ValueError("no backward calls were recorded; there is no graph to draw")
    view = build_view(summary, call, max_step_boxes=max_step_boxes, max_boxes=max_boxes)
    layout = _lay_out(view, _typical_window(summary.calls), max_width)
    c, placed = view.call, layout.placed
    k2 = summary.expected_k2
    title = f"{graph_title(c, k2)}; {c.graph_nodes} graph nodes, {human_bytes(c.saved_bytes)} saved"
    out = _head(layout)
    out.extend(_frames(view, placed, layout.typical, layout.box_w, layout.box_h))
    for p in placed:
        out.append(f'  {p.name} [pos="{p.x:.1f},{p.y:.1f}!" {_box_attrs(p.box)}]')
    out.extend(_flow_edges(layout))
    rx = _root(layout, out)
    out.extend(_k2_line(view, placed, layout.box_w, layout.box_h, layout.slot))
    box_w, box_h = layout.box_w, layout.box_h
    bottom = -(layout.rows - 1) * (box_h + layout.row_gap) - box_h / 2 - ROW_GAP_PT
    widest = max((p.x for p in placed), default=0.0) + box_w / 2 + GAP_PT  # row end, stub
    legend_width = max(widest, rx + layout.root_w / 2, min(LEGEND_MIN_WIDTH_PT, max_width))
    out.extend(_legend(bottom, view.k2_boundary is not None, k2, view.per_step, legend_width))
    out.append(f'  label="{dot_escape(_wrap_title(title, legend_width))}"')
    out.append("}")
    return "\n".join(out) + "\n"


@dataclass
class _Layout:
    """Where the boxes of a view go: sizes in points, and each box placed in its row."""

    box_w: float
    box_h: float
    row_gap: float
    slot: float  # a box and the gap after it
    root_label: str
    root_w: float
    typical: int  # the typical window, in steps (0: none)
    rows: int
    placed: list[Placed]

    def xy(self, row: int, col: int) -> tuple[float, float]:
        return col * self.slot + self.box_w / 2, -row * (self.box_h + self.row_gap)


def _lay_out(view: View, typical: int, max_width: float) -> _Layout:
    c, boxes = view.call, view.boxes
    history = boxes[0] if boxes and boxes[0].history else None
    body = boxes[1:] if history else boxes
    box_h = BOX_H_STEP if view.per_step else BOX_H_WINDOW
    row_gap = ROW_GAP_FRAMED_PT if view.per_step else ROW_GAP_PT
    box_w = max((_text_width(b.label()) for b in boxes), default=24.0) + 12
    root_label = f"backward #{c.index}\\nafter step {c.step}"
    if c.opaque:
        root_label += f"\\nopaque: {dot_escape(', '.join(c.opaque[:3]))}"
    root_w = _text_width(root_label) + 16
    slot = box_w + GAP_PT
    # One slot on the left (the earlier-steps box, or where a row continues) and one on the
    # right (where a row goes on, or the backward node).
    fit = max(1, int((max_width - max(root_w, box_w) - GAP_PT) // slot) - 1)
    per_row = _row_length(view, fit, typical, len(body))
    cells = [(i // per_row, i % per_row) for i in range(len(body))]
    rows = cells[-1][0] + 1 if cells else 1
    layout = _Layout(box_w, box_h, row_gap, slot, root_label, root_w, typical, rows, [])
    placed = layout.placed
    if history is not None:
        placed.append(Placed("b0", *layout.xy(0, 0), box=history))
    offset = 1 if history else 0
    for i, box in enumerate(body):
        row, col = cells[i]
        placed.append(Placed(f"b{i + offset}", *layout.xy(row, 1 + col), box=box))
    return layout


def _head(layout: _Layout) -> list[str]:
    return [
        "digraph condensed {",
        "  graph [layout=neato inputscale=72 splines=false outputorder=nodesfirst forcelabels=true "
        f"fontname=Helvetica fontsize={TITLE_PT:g} labelloc=t]",
        f'  node [shape=box style="rounded,filled" fontname=Helvetica fontsize={FONT_PT:g} '
        f'fillcolor=white color="#555555" fixedsize=true width={layout.box_w / 72:.3f} '
        f"height={layout.box_h / 72:.3f}]",
        "  edge [dir=back arrowsize=0.6 fontname=Helvetica fontsize=9]",
    ]


def _flow_edges(layout: _Layout) -> list[str]:
    """What crosses between neighbouring boxes; a row break gets a stub at both ends instead
    of an edge across the picture."""
    placed, box_w, box_h = layout.placed, layout.box_w, layout.box_h
    out: list[str] = []
    for i in range(1, len(placed)):
        prev, here = placed[i - 1], placed[i]
        style = _flow_attrs(here.box)
        if here.y == prev.y:
            out.append(f"  {prev.name} -> {here.name} [{style}]")
            continue
        end, start = f"e{i}", f"s{i}"
        ex, ey = prev.x + layout.slot, prev.y
        sx, sy = layout.xy(round(-here.y / (box_h + layout.row_gap)), 0)
        out.append(f'  {end} [pos="{ex - box_w / 2 + 8:.1f},{ey:.1f}!" {_STUB}]')
        out.append(f'  {start} [pos="{sx + box_w / 2 - 8:.1f},{sy:.1f}!" {_STUB}]')
        out.append(f"  {prev.name} -> {end} [{style}]")
        out.append(f"  {start} -> {here.name} [{style}]")
    return out


def _root(layout: _Layout, out: list[str]) -> float:
    """The backward node, after the last box (a backward before any step, with nothing to
    draw but itself, stands alone), into `out`; its x."""
    placed, box_w = layout.placed, layout.box_w
    last = placed[-1] if placed else Placed("", -GAP_PT - box_w / 2, 0.0)
    rx = last.x + box_w / 2 + GAP_PT + layout.root_w / 2
    out.append(
        f'  root [pos="{rx:.1f},{last.y:.1f}!" label="{layout.root_label}" shape=doubleoctagon '
        f'fillcolor="#e5f5e0" color="#31a354" width={layout.root_w / 72:.3f} '
        f"height={max(layout.box_h, 36) / 72:.3f}]"
    )
    if placed:
        out.append(f'  {placed[-1].name} -> root [color="{ENTRY_COLOUR}" penwidth=2]')
    return rx


def _wrap_title(title: str, width: float) -> str:
    """Break the title after its "; " when it is wider than the picture: a narrow picture
    would otherwise be as wide as its one-line title."""
    lines: list[str] = []
    for part in title.split("; "):
        if lines and _text_width(f"{lines[-1]}; {part}", TITLE_PT, 0.5) <= width:
            lines[-1] += f"; {part}"
        else:
            lines.append(part)
    return "\\n".join(lines)


_STUB = 'shape=plaintext style="" label="\u2026" fontcolor="#777777" width=0.2 height=0.2'


def _box_attrs(box: Box | None) -> str:
    assert box is not None
    attrs = [f'label="{dot_escape(box.label())}"']
    if box.history or not box.reached:
        attrs.append('style="rounded,dashed" color="#999999" fontcolor="#777777"')
    elif box.beyond_k2:
        attrs.append(f'fillcolor="{BEYOND_FILL}" color="{BEYOND_BORDER}"')
    elif box.cut_before and box.size == 1:
        attrs.append(f'fillcolor="{CUT_FILL}"')  # as on the timeline: the step it stops at
    else:
        attrs.append(f'fillcolor="{FULL_FILL if box.reached == box.size else PART_FILL}"')
    if box.cuts_inside:
        attrs.append(f'color="{CUT_COLOUR}" penwidth=2')
    return " ".join(attrs)


def _flow_attrs(box: Box | None) -> str:
    """How the gradient crosses from `box` back into the box just before it: decided by the
    box's first step alone (a cut step, reached through carried state, or not reached)."""
    assert box is not None
    if box.cut_before:
        return (
            f'style=dashed color="{CUT_COLOUR}" penwidth=2 arrowtail=tee xlabel="cut" '
            f'fontcolor="{CUT_COLOUR}"'
        )
    if not box.reached:
        return 'color="#cccccc" arrowtail=none'  # the gradient never got here; time runs on
    return f'color="{FLOW_COLOUR}" penwidth=2'


def _frames(
    view: View, placed: list[Placed], typical: int, box_w: float, box_h: float
) -> list[str]:
    """Per-step view: a frame around each backward window's steps on each row, named after
    the backward call that ran at its end (the unit a TBPTT loop is written in). A window
    longer than a row is framed on each row it spans, each piece with its backward's name."""
    if not view.per_step or typical <= 1:
        return []  # windows of one step: a frame per box says nothing the boxes do not
    out: list[str] = []
    run: list[Placed] = []
    ends = sorted(view.window_ends)

    def close() -> None:
        if not run:
            return
        end = run[-1].box.end if run[-1].box else 0
        # The window holding this piece ends at the first backward at or after its end.
        at = bisect.bisect_left(ends, end)
        owner = view.window_ends[ends[at]] if at < len(ends) else None
        label = f"backward #{owner}" if owner is not None else ""
        left, right = run[0].x - box_w / 2 - 6, run[-1].x + box_w / 2 + 6
        width, height = right - left, box_h + 24
        if _text_width(label, 9, 0.6) > width:
            label = f"#{owner}"  # a window of one step: the frame is too narrow for the words
        out.append(
            f'  f{len(out)} [pos="{(left + right) / 2:.1f},{run[0].y + 6:.1f}!" '
            f'label="{label}" labelloc=t fontsize=9 fontcolor="#555555" '
            f'style="rounded,dashed" color="#bbbbbb" fillcolor=none width={width / 72:.3f} '
            f"height={height / 72:.3f}]"
        )
        run.clear()

    for p in placed:
        box = p.box
        if box is None or box.history:
            continue
        if run and (p.y != run[-1].y or run[-1].box.end in view.window_ends):  # type: ignore[union-attr]
            close()
        run.append(p)
    close()
    return out


def _k2_line(
    view: View, placed: list[Placed], box_w: float, box_h: float, slot: float
) -> list[str]:
    """A dashed line in the gap before the first box of the expected window, close to that
    box: the gap's middle is where the "cut" label of a cut at the boundary sits."""
    if view.k2_boundary is None:
        return []
    first = next((p for p in placed if p.box and p.box.start == view.k2_boundary), None)
    if first is None:
        return []
    x = first.x - box_w / 2 - min(4.0, (slot - box_w) / 4)
    top, bottom = first.y + box_h / 2 + 20, first.y - box_h / 2 - 8
    return [
        f'  k2top [pos="{x:.1f},{top:.1f}!" shape=point width=0.01 color="{K2_COLOUR}"]',
        f'  k2bot [pos="{x:.1f},{bottom:.1f}!" shape=point width=0.01 color="{K2_COLOUR}"]',
        f'  k2top -> k2bot [dir=none style=dashed penwidth=2.5 color="{K2_COLOUR}"]',
        f'  k2label [pos="{x + 4:.1f},{top + 8:.1f}!" shape=plaintext style="" '
        f'label="K2: expected window \u2192" fontcolor="{K2_COLOUR}" fontsize=9 '
        f"fixedsize=false width=0.2 height=0.15]",
    ]


def _legend(
    top: float, with_k2: bool, k2: int | None, per_step: bool, max_width: float
) -> list[str]:
    """Sample boxes and edges with their meaning, in rows under the picture."""
    items: list[tuple[str, str]] = [(f'fillcolor="{FULL_FILL}"', "reached by this backward")]
    if per_step:
        items.append((f'fillcolor="{CUT_FILL}"', "reached; the gradient stops at this step"))
    if with_k2:
        items.append(
            (
                f'fillcolor="{BEYOND_FILL}" color="{BEYOND_BORDER}"',
                f"{BEYOND_TEXT} (further back than k2={k2})",
            )
        )
    items.append(('style="rounded,dashed" color="#999999"', "not reached"))
    edges: list[tuple[str, str]] = [
        (f'color="{FLOW_COLOUR}" penwidth=2', "gradient flows back (carried state)"),
        (f'style=dashed color="{CUT_COLOUR}" penwidth=2 arrowtail=tee', f"cut: {CUT_TEXT}"),
    ]
    if with_k2:
        edges.append(
            (
                f'dir=none style=dashed penwidth=2.5 color="{K2_COLOUR}"',
                "K2: where the expected window begins",
            )
        )
    out: list[str] = []
    x, y = 0.0, top - 14

    def room(need: float) -> None:
        nonlocal x, y
        if x and x + need > max_width:
            x, y = 0.0, y - 20

    for n, (attrs, text) in enumerate(items):
        width = _text_width(text, 9, 0.47)
        room(36 + width)
        out.append(f'  lb{n} [pos="{x + 14:.1f},{y:.1f}!" label="" {attrs} width=0.39 height=0.22]')
        out.append(
            f'  lt{n} [pos="{x + 36 + width / 2:.1f},{y:.1f}!" shape=plaintext style="" '
            f'label="{text}" fontsize=9 width={width / 72:.3f} height=0.2]'
        )
        x += 36 + width + 24
    for n, (attrs, text) in enumerate(edges):
        width = _text_width(text, 9, 0.47)
        room(40 + width)
        out.append(f'  la{n} [pos="{x:.1f},{y:.1f}!" shape=point width=0.01 style=invis]')
        out.append(f'  lz{n} [pos="{x + 32:.1f},{y:.1f}!" shape=point width=0.01 style=invis]')
        out.append(f"  la{n} -> lz{n} [{attrs}]")
        out.append(
            f'  le{n} [pos="{x + 40 + width / 2:.1f},{y:.1f}!" shape=plaintext style="" '
            f'label="{text}" fontsize=9 width={width / 72:.3f} height=0.2]'
        )
        x += 40 + width + 24
    return out
