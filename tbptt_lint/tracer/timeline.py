"""`save_timeline`: which steps each backward's gradient reached, one row per backward call.

Time steps run across, backward calls down. A reached step is blue when the gradient arrived
there through carried state, orange where it stops: no carried state from an earlier reached
step flowed into it (`BackwardCall.cut_steps`: the state was cut or made anew, or it is the
first step). So correct TBPTT is a run of blue per row that starts with one orange cell, a
leak is a blue area widening to the left row after row, and "detach every step" is rows of
orange. When k2 is known (from `assert_tbptt`, which the pytest marker calls too) every row
outlines the window it should reach, the k2 steps before its backward, and steps reached
beyond it are red. Alternate windows (steps between backward calls) have a grey background
and a dark bar marks where each backward ran.

Both formats are written without new dependencies: SVG by hand (each cell with a tooltip),
PNG with zlib and struct and glyphs stored in the package (`png_canvas`). Past `MAX_COLUMNS`
steps (or `MAX_ROWS` calls) several steps (calls) share one pixel and the shade shows the
fraction reached, so 5000 steps x 500 calls stays about 1000 px.
"""

from __future__ import annotations

import bisect
import operator
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from xml.sax.saxutils import escape

from tbptt_lint.tracer.png_canvas import BODY, TITLE, Canvas, face, text_width
from tbptt_lint.tracer.records import BackwardCall, TraceSummary

MAX_COLUMNS = 1000
MAX_ROWS = 800
MAX_CELL = 16
MAX_CELL_RECTS = 5000
MIN_LEGEND_WIDTH = 640

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BAND: RGB = (236, 236, 236)
BLUE: RGB = (33, 113, 181)
ORANGE: RGB = (253, 141, 60)
RED: RGB = (203, 24, 29)
MARK: RGB = (30, 30, 30)
WINDOW: RGB = (0, 0, 0)
INK: RGB = (40, 40, 40)
GRID: RGB = (200, 200, 200)

LINKED_TEXT = "gradient arrived through carried state"
CUT_TEXT = "gradient stops here (state cut, made anew, or first step)"
BEYOND_TEXT = "reached beyond the expected window"
MARK_TEXT = "backward ran here"
BAND_TEXT = "every other window"


def _hex(c: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


@dataclass(frozen=True, slots=True)
class Cell:
    frac: float  # share of the column's steps (times the row's calls) reached
    cut: float  # share of those reached where the gradient stops
    beyond: float  # share of those reached before the expected window


@dataclass
class Row:
    label: str  # "#12" or "#12-15" when calls share a row
    horizon: str
    calls: list[BackwardCall]
    cells: dict[int, Cell] = field(default_factory=dict)  # column -> cell
    marks: list[int] = field(default_factory=list)  # x offsets (px) of backward positions
    window: tuple[int, int] | None = None  # px range (x0, x1) of the expected window


@dataclass
class Grid:
    n_steps: int
    bucket: int  # steps per column
    ncols: int
    cell_w: int
    row_h: int
    rows: list[Row]
    bands: list[tuple[int, int]]  # pixel ranges (x0, x1) of odd windows, relative to the plot
    exact: bool  # one column per step and one row per call
    k2: int | None
    left: int  # margins, px
    right: int
    top: int
    legend: list[list[tuple[str, str]]]  # lines of (swatch kind, text)

    @property
    def plot_w(self) -> int:
        return self.ncols * self.cell_w

    @property
    def plot_h(self) -> int:
        return len(self.rows) * self.row_h

    @property
    def width(self) -> int:
        return max(self.left + self.plot_w + self.right, self.left + MIN_LEGEND_WIDTH)

    @property
    def line_h(self) -> int:
        return face(BODY).height + 4

    @property
    def legend_top(self) -> int:
        return self.top + self.plot_h + 14

    @property
    def height(self) -> int:
        return self.legend_top + len(self.legend) * self.line_h + 8


def _steps(count: int) -> str:
    return "step" if count == 1 else "steps"


def window_start(call: BackwardCall, k2: int) -> int:
    """First step of the window a backward should reach: the k2 steps before it."""
    return max(call.step - k2, 0)


def _legend_advance(text: str) -> int:
    """Room for a legend item: swatch, text and gap. The SVG's text is set in the viewer's
    sans-serif, up to a fifth wider than the PNG's glyphs (DejaVu Sans): room for that."""
    return 20 + text_width(text) * 6 // 5 + 12


def _legend(k2: int | None, bands: bool, width: int) -> list[list[tuple[str, str]]]:
    items = [("linked", LINKED_TEXT), ("cut", CUT_TEXT)]
    if k2 is not None:
        items += [
            ("window", f"expected window: the k2={k2} {_steps(k2)} before each backward"),
            ("beyond", BEYOND_TEXT),
        ]
    items.append(("mark", MARK_TEXT))
    if bands:
        items.append(("band", BAND_TEXT))
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for kind, text in items:
        need = _legend_advance(text)
        if lines[-1] and used + need > width:
            lines.append([])
            used = 0
        lines[-1].append((kind, text))
        used += need
    return lines


def build_grid(summary: TraceSummary, k2: int | None = None) -> Grid:
    calls = summary.calls
    if k2 is None:
        k2 = summary.expected_k2
    n_steps = max(
        [
            len(summary.steps),
            1,
            *(c.step for c in calls),
            *(max(c.reached_steps) + 1 for c in calls if c.reached_steps),
        ]
    )
    bucket = -(-n_steps // MAX_COLUMNS)
    ncols = -(-n_steps // bucket)
    cell_w = max(1, min(MAX_CELL, MAX_COLUMNS // ncols))
    row_bucket = max(1, -(-len(calls) // MAX_ROWS))
    nrows = -(-len(calls) // row_bucket) if calls else 0
    row_h = max(1, min(MAX_CELL, MAX_ROWS // max(nrows, 1)))

    def col_size(col: int) -> int:
        return min(bucket, n_steps - col * bucket)

    def x_of(step: int) -> int:
        return min(step * cell_w // bucket, ncols * cell_w)

    rows = []
    for r in range(nrows):
        group = calls[r * row_bucket : (r + 1) * row_bucket]
        reached: Counter[int] = Counter()
        cut: Counter[int] = Counter()
        beyond: Counter[int] = Counter()
        for c in group:
            # Counted with C loops (Counter.update over map): a long leak reaches millions.
            steps = sorted(set(c.reached_steps))
            stops = c.cut_steps
            lo = window_start(c, k2) if k2 is not None else 0
            before = steps[: bisect.bisect_left(steps, lo)]
            if bucket == 1:
                reached.update(steps)
                cut.update(stops)
                beyond.update(before)
            else:
                reached.update(map(operator.floordiv, steps, repeat(bucket)))
                cut.update(map(operator.floordiv, stops, repeat(bucket)))
                beyond.update(map(operator.floordiv, before, repeat(bucket)))
        first, last = group[0], group[-1]
        label = f"#{first.index}" if len(group) == 1 else f"#{first.index}-{last.index}"
        hs = sorted({c.horizon for c in group})
        horizon = f"h={hs[0]}" if len(hs) == 1 else f"h={hs[0]}-{hs[-1]}"
        cells = {
            col: Cell(n / (col_size(col) * len(group)), cut[col] / n, beyond[col] / n)
            for col, n in reached.items()
        }
        window = None
        if k2 is not None:
            window = (
                x_of(min(window_start(c, k2) for c in group)),
                x_of(max(c.step for c in group)),
            )
        marks = sorted({x_of(c.step) for c in group})
        if cell_w <= 2:
            # Pixels too narrow for a bar beside the cells: the cells' own colour wins, and
            # the mark shows only where the backward's last steps were not reached.
            marks = [x for x in marks if (x - 1) // cell_w not in cells]
        rows.append(Row(label, horizon, group, cells, marks, window))

    # Windows are delimited by every backward's position; only draw bands wide enough to see.
    bounds = sorted({0, n_steps, *(min(c.step, n_steps) for c in calls)})
    bands = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        x0, x1 = a * cell_w // bucket, b * cell_w // bucket
        if i % 2 and x1 - x0 >= 4:  # narrower bands are just noise
            bands.append((x0, x1))
    exact = bucket == 1 and row_bucket == 1
    left = 12 + max((text_width(row.label) for row in rows), default=0)
    right = 12 + max((text_width(row.horizon) for row in rows), default=0)
    top = 10 + face(TITLE).height + 6 + face(BODY).height + 6
    width = max(left + ncols * cell_w + right, left + MIN_LEGEND_WIDTH)
    legend = _legend(k2, bool(bands), width - left - 8)
    return Grid(
        n_steps, bucket, ncols, cell_w, row_h, rows, bands, exact, k2, left, right, top, legend
    )


@lru_cache(maxsize=4096)  # shades repeat: a long trace has few distinct ones
def _cell_colour(background: RGB, cell: Cell) -> RGB:
    # The hue says how the gradient got there, the strength how much of the pixel it reached:
    # any reach at all must show, even one step in a 5-step pixel, so it starts at 35%.
    inside = 1.0 - cell.beyond
    hue = _mix(BLUE, ORANGE, cell.cut / inside if inside > 0 else 0.0)
    hue = _mix(hue, RED, cell.beyond)
    return _mix(background, hue, 0.35 + 0.65 * min(cell.frac, 1.0))


def _ticks(n_steps: int, target: int = 10) -> list[int]:
    step = 1
    while n_steps / step > target:
        for m in (2, 5, 10):
            if n_steps / (step * m) <= target:
                step *= m
                break
        else:
            step *= 10
    return list(range(0, n_steps + 1, step))


def _label_every(grid: Grid) -> int:
    # Row labels are a text line tall and need a gap; when rows are thinner, label every k-th.
    return max(1, -(-(face(BODY).height - 1) // grid.row_h))


TITLE_TEXT = "Timeline: time steps across, one row per backward call"


def _tooltip(call: BackwardCall, step: int, cut: bool, k2: int | None) -> str:
    how = CUT_TEXT.replace("gradient stops here", "the gradient stops here") if cut else LINKED_TEXT
    text = f"step {step}, backward #{call.index} (after step {call.step}): {how}"
    if k2 is not None and step < window_start(call, k2):
        text += (
            f"; beyond the expected window of k2={k2} {_steps(k2)} "
            f"(steps {window_start(call, k2)}-{call.step - 1})"
        )
    return text


# ---------------------------------------------------------------------------------------------
# SVG


def _svg_swatch(kind: str, x: int, y: int) -> str:
    """A 14x10 legend swatch with its top left at (x, y)."""
    box = f'x="{x}" y="{y}" width="14" height="10"'
    if kind == "window":
        return f'<rect {box} fill="#ffffff" stroke="{_hex(WINDOW)}" stroke-width="1.5"/>'
    if kind == "mark":
        return f'<rect x="{x + 6}" y="{y - 1}" width="2" height="12" fill="{_hex(MARK)}"/>'
    fill = {"linked": BLUE, "cut": ORANGE, "beyond": RED, "band": BAND}[kind]
    return f'<rect {box} fill="{_hex(fill)}"/>'


def timeline_svg(summary: TraceSummary, k2: int | None = None) -> str:
    g = build_grid(summary, k2)
    plot_w, plot_h = g.plot_w, g.plot_h
    title_y = 10 + face(TITLE).ascent
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{g.width}" height="{g.height}" '
        f'viewBox="0 0 {g.width} {g.height}" font-family="Helvetica,Arial,sans-serif" '
        f'font-size="{BODY}" fill="{_hex(INK)}" shape-rendering="crispEdges">',
        f"<title>{escape(TITLE_TEXT)}</title>",
        f'<rect x="0" y="0" width="{g.width}" height="{g.height}" fill="#ffffff"/>',
        f'<text x="{g.left}" y="{title_y}" font-size="{TITLE}">{escape(TITLE_TEXT)}</text>',
        f'<g transform="translate({g.left},{g.top})">',
    ]
    out += [
        f'<rect class="window-band" x="{a}" y="0" width="{b - a}" height="{plot_h}" '
        f'fill="{_hex(BAND)}"/>'
        for a, b in g.bands
    ]
    for tick in _ticks(g.n_steps):
        x = tick * g.cell_w // g.bucket
        out.append(
            f'<line x1="{x}" y1="-4" x2="{x}" y2="{plot_h}" stroke="{_hex(GRID)}" '
            'stroke-width="1"/>'
        )
        out.append(f'<text x="{x}" y="-7" text-anchor="middle">{tick}</text>')
    every = _label_every(g)
    # One rect per reached step lets the picture be checked cell by cell, but a long exact
    # trace would make a multi-megabyte page: merge runs of equal colour past a few thousand.
    per_cell = g.exact and sum(len(row.cells) for row in g.rows) <= MAX_CELL_RECTS
    # White seams between cells where cells are big enough to spare a pixel, as in the PNG.
    seam = ' stroke="#ffffff" stroke-width="1"' if g.cell_w >= 8 else ""
    for r, row in enumerate(g.rows):
        y = r * g.row_h
        if per_cell:
            call = row.calls[0]
            for col, cell in sorted(row.cells.items()):
                kind = "cut" if cell.cut else "linked"
                if cell.beyond:
                    kind += " beyond"
                tip = escape(_tooltip(call, col, bool(cell.cut), g.k2))
                out.append(
                    f'<rect class="reached {kind}" data-step="{col}" data-call="{call.index}" '
                    f'x="{col * g.cell_w}" y="{y}" '
                    f'width="{g.cell_w}" height="{g.row_h}" '
                    f'fill="{_hex(_cell_colour(WHITE, cell))}"{seam}><title>{tip}</title></rect>'
                )
        else:
            out.extend(_svg_runs(row, y, g))
        if row.window is not None:
            a, b = row.window
            out.append(
                f'<rect class="expected-window" data-call="{row.calls[-1].index}" '
                f'x="{a}" y="{y}" width="{b - a}" '
                f'height="{g.row_h}" fill="none" stroke="{_hex(WINDOW)}" stroke-width="1.5">'
                f"<title>{escape(_window_tooltip(row, g.k2))}</title></rect>"
            )
        for x in row.marks:
            out.append(
                f'<rect class="backward" x="{max(x - 2, 0)}" y="{y}" width="2" '
                f'height="{g.row_h}" fill="{_hex(MARK)}"/>'
            )
        if r % every == 0:
            ty = y + min(g.row_h, 12) - 1
            out.append(f'<text x="-6" y="{ty}" text-anchor="end">{escape(row.label)}</text>')
            out.append(f'<text x="{plot_w + 6}" y="{ty}">{escape(row.horizon)}</text>')
    out.append(
        f'<rect x="0" y="0" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{_hex(INK)}" stroke-width="1"/>'
    )
    out.append("</g>")
    out.append(f'<g class="legend" transform="translate({g.left},{g.legend_top})">')
    for i, line in enumerate(g.legend):
        x, y = 0, i * g.line_h
        for kind, text in line:
            out.append(f'<g class="legend-item {kind}">{_svg_swatch(kind, x, y + 2)}')
            out.append(f'<text x="{x + 20}" y="{y + 11}">{escape(text)}</text></g>')
            x += _legend_advance(text)
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _window_tooltip(row: Row, k2: int | None) -> str:
    call = row.calls[-1]
    return (
        f"backward #{call.index}: expected window, the k2={k2} {_steps(k2 or 0)} before it "
        f"(steps {window_start(call, k2 or 0)}-{call.step - 1}); horizon {row.horizon[2:]}"
    )


def _svg_runs(row: Row, y: int, g: Grid) -> list[str]:
    """Adjacent columns of the same (quantised) shade merged into one rect."""
    out = []
    run_start, run_colour = -1, None
    cols = sorted(row.cells)
    ends: list[int | None] = [*cols, None]
    for i, col in enumerate(ends):
        colour = None
        if col is not None:
            cell = row.cells[col]
            quantised = Cell(
                round(cell.frac * 8) / 8, round(cell.cut * 4) / 4, round(cell.beyond * 4) / 4
            )
            colour = _cell_colour(WHITE, quantised)
        contiguous = col is not None and i > 0 and col == cols[i - 1] + 1
        if run_colour is not None and (colour != run_colour or not contiguous):
            x0 = run_start * g.cell_w
            x1 = (cols[i - 1] + 1) * g.cell_w
            first, last = run_start * g.bucket, min((cols[i - 1] + 1) * g.bucket, g.n_steps) - 1
            tip = f"steps {first}-{last}, backward {row.label}"
            out.append(
                f'<rect class="reached-run" x="{x0}" y="{y}" width="{x1 - x0}" '
                f'height="{g.row_h}" fill="{_hex(run_colour)}"><title>{tip}</title></rect>'
            )
            run_colour = None
        if colour is not None and run_colour is None and col is not None:
            run_start, run_colour = col, colour
    return out


# ---------------------------------------------------------------------------------------------
# PNG


def _png_swatch(canvas: Canvas, kind: str, x: int, y: int) -> None:
    if kind == "window":
        canvas.outline(x, y, x + 14, y + 10, WINDOW)
    elif kind == "mark":
        canvas.rect(x + 6, y - 1, x + 8, y + 11, MARK)
    else:
        fill = {"linked": BLUE, "cut": ORANGE, "beyond": RED, "band": BAND}[kind]
        canvas.rect(x, y, x + 14, y + 10, fill)


def timeline_png(summary: TraceSummary, k2: int | None = None) -> bytes:
    g = build_grid(summary, k2)
    plot_w, plot_h = g.plot_w, g.plot_h
    left, top = g.left, g.top
    canvas = Canvas(g.width, g.height)
    canvas.text(left, 10, TITLE_TEXT, size=TITLE)
    background = bytearray(bytes(WHITE) * plot_w)
    for a, b in g.bands:
        background[a * 3 : b * 3] = bytes(BAND) * (b - a)
    body = face(BODY)
    for tick in _ticks(g.n_steps):
        x = tick * g.cell_w // g.bucket
        canvas.rect(left + x, top - 4, left + x + 1, top, INK)
        canvas.text(left + x, top - 5 - body.height, str(tick), anchor="middle")
    every = _label_every(g)
    gap = 1 if g.exact and g.cell_w >= 8 else 0  # white seams between cells when cells are big
    seam = 1 if g.row_h >= 6 else 0
    for r, row in enumerate(g.rows):
        line = bytearray(background)
        for col, cell in row.cells.items():
            x0, x1 = col * g.cell_w, (col + 1) * g.cell_w - gap
            band = tuple(background[x0 * 3 : x0 * 3 + 3])
            line[x0 * 3 : x1 * 3] = bytes(_cell_colour(band, cell)) * (x1 - x0)
        for x in row.marks:
            # 1 px when a pixel holds several steps, so short windows stay visible beside it.
            a, b = max(x - (2 if g.cell_w > 1 else 1), 0), min(x, plot_w)
            line[a * 3 : b * 3] = bytes(MARK) * (b - a)
        y0 = top + r * g.row_h
        for y in range(y0, y0 + g.row_h - seam):
            canvas.rows[y][left * 3 : (left + plot_w) * 3] = line
        if row.window is not None:
            a, b = row.window
            if g.row_h >= 4:
                # Just outside the window's cells (over the seams around them), so the first
                # cell, often the one where the gradient stops, keeps its whole width.
                canvas.outline(left + a - 1, y0 - 1, left + max(b, a + 2) + 1, y0 + g.row_h, WINDOW)
            elif b - a >= 6:
                # Rows too thin for a box: its left edge, a staircase down the picture (not
                # where it would cover the few pixels the window's own cells have).
                canvas.rect(left + a, y0, left + a + 1, y0 + g.row_h, WINDOW)
        if r % every == 0:
            ty = y0 + (g.row_h - body.height) // 2
            canvas.text(left - 6, ty, row.label, anchor="end")
            canvas.text(left + plot_w + 6, ty, row.horizon)
    # Frame, so that an all-white row (nothing reached) is still visibly a row.
    canvas.outline(left - 1, top - 1, left + plot_w + 1, top + plot_h + 1, INK)
    for i, legend_line in enumerate(g.legend):
        x, y = left, g.legend_top + i * g.line_h
        for kind, text in legend_line:
            _png_swatch(canvas, kind, x, y + 3)
            canvas.text(x + 20, y, text)
            x += _legend_advance(text)
    return canvas.png()


def save_timeline(
    summary: TraceSummary, path: str | os.PathLike[str], k2: int | None = None
) -> Path:
    """Write the timeline as `.svg` or `.png`, chosen by the suffix. `k2`, when given (else
    the one `assert_tbptt` was called with), outlines the expected window on every row."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".svg":
        out.write_text(timeline_svg(summary, k2), encoding="utf-8")
    elif suffix == ".png":
        out.write_bytes(timeline_png(summary, k2))
    else:
        raise ValueError(
            f"cannot save a timeline as {suffix or 'a file with no suffix'}: use .svg or .png"
        )
    return out
