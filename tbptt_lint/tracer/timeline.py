"""`save_timeline`: which steps each backward's gradient reached, one row per backward call.

Time steps run across, backward calls down. A reached step is shaded blue when gradient
arrived there through carried state from a later step, orange when the state flowing into it
was cut (the gradient only got there from that step's own loss). So correct TBPTT is a blue run
per row starting with one orange cell, a leak is a blue area widening to the left row after row,
and "detach every step" is rows of orange: the two mistakes that read the same in a table of
reached steps look different here. Alternate windows (steps between backward calls) have a grey
background and a dark red bar marks where each backward ran.

Both formats are written without new dependencies: SVG by hand, PNG with zlib and struct and a
3x5 pixel font. Past `MAX_COLUMNS` steps (or `MAX_ROWS` calls) several steps (calls) share one
pixel and the shade shows the fraction reached, so 5000 steps x 500 calls stays about 1000 px.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from tbptt_lint.tracer.records import TraceSummary

MAX_COLUMNS = 1000
MAX_ROWS = 800
MAX_CELL = 16
MAX_CELL_RECTS = 5000
LEFT, TOP, RIGHT, BOTTOM = 56, 46, 64, 34

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BAND: RGB = (236, 236, 236)
BLUE: RGB = (33, 113, 181)
ORANGE: RGB = (253, 141, 60)
MARK: RGB = (165, 15, 21)
INK: RGB = (40, 40, 40)
GRID: RGB = (200, 200, 200)


def _hex(c: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


@dataclass
class Row:
    label: str  # "#12" or "#12-15" when calls share a row
    horizon: str
    cells: dict[int, tuple[float, float]] = field(default_factory=dict)  # col -> (frac, cut)
    marks: list[int] = field(default_factory=list)  # x offsets (px) of backward positions


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

    @property
    def width(self) -> int:
        # Wide enough for the legend line (8 px a character in the PNG font).
        return max(LEFT + self.ncols * self.cell_w + RIGHT, LEFT + 8 * len(LEGEND) + 8)

    @property
    def height(self) -> int:
        return TOP + len(self.rows) * self.row_h + BOTTOM


def build_grid(summary: TraceSummary) -> Grid:
    calls = summary.calls
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

    rows = []
    for r in range(nrows):
        group = calls[r * row_bucket : (r + 1) * row_bucket]
        reached: Counter[int] = Counter()
        cut: Counter[int] = Counter()
        marks = []
        for c in group:
            linked_into = {t for _, t in c.state_links}
            for s in set(c.reached_steps):
                reached[s // bucket] += 1
                # Step 0 counts as cut too: no carried state flows into it from anywhere.
                if s not in linked_into:
                    cut[s // bucket] += 1
            marks.append(min(c.step * cell_w // bucket, ncols * cell_w))
        first, last = group[0], group[-1]
        label = f"#{first.index}" if len(group) == 1 else f"#{first.index}-{last.index}"
        hs = sorted({c.horizon for c in group})
        horizon = f"h={hs[0]}" if len(hs) == 1 else f"h={hs[0]}-{hs[-1]}"
        cells = {
            col: (n / (col_size(col) * len(group)), cut[col] / n) for col, n in reached.items()
        }
        rows.append(Row(label, horizon, cells, sorted(set(marks))))

    # Windows are delimited by every backward's position; only draw bands wide enough to see.
    bounds = sorted({0, n_steps, *(min(c.step, n_steps) for c in calls)})
    bands = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        x0, x1 = a * cell_w // bucket, b * cell_w // bucket
        if i % 2 and x1 - x0 >= 4:  # narrower bands are just noise
            bands.append((x0, x1))
    exact = bucket == 1 and row_bucket == 1
    return Grid(n_steps, bucket, ncols, cell_w, row_h, rows, bands, exact)


def _cell_colour(background: RGB, frac: float, cut: float) -> RGB:
    # Any reach at all must show, even one step in a 5-step pixel: start at 35% strength.
    return _mix(background, _mix(BLUE, ORANGE, cut), 0.35 + 0.65 * min(frac, 1.0))


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
    # Row labels are 10 px tall and need a gap; when rows are thinner, label every k-th row.
    return max(1, -(-13 // grid.row_h))


TITLE = "Timeline: time steps across, one row per backward call"
LEGEND = (
    "blue: reached through carried state   orange: reached, no state flowed in (cut)   "
    "dark red bar: backward"
)


# ---------------------------------------------------------------------------------------------
# SVG


def timeline_svg(summary: TraceSummary) -> str:
    g = build_grid(summary)
    plot_w, plot_h = g.ncols * g.cell_w, len(g.rows) * g.row_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{g.width}" height="{g.height}" '
        f'viewBox="0 0 {g.width} {g.height}" font-family="Helvetica,Arial,sans-serif" '
        'font-size="11" shape-rendering="crispEdges">',
        f"<title>{escape(TITLE)}</title>",
        f'<rect x="0" y="0" width="{g.width}" height="{g.height}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="14" font-size="13">{escape(TITLE)}</text>',
        f'<g transform="translate({LEFT},{TOP})">',
    ]
    out += [
        f'<rect class="window" x="{a}" y="0" width="{b - a}" height="{plot_h}" '
        f'fill="{_hex(BAND)}"/>'
        for a, b in g.bands
    ]
    for tick in _ticks(g.n_steps):
        x = tick * g.cell_w // g.bucket
        out.append(
            f'<line x1="{x}" y1="-4" x2="{x}" y2="{plot_h}" stroke="{_hex(GRID)}" '
            'stroke-width="0.5"/>'
        )
        out.append(f'<text x="{x}" y="-7" text-anchor="middle">{tick}</text>')
    every = _label_every(g)
    # One rect per reached step lets the picture be checked cell by cell, but a long exact
    # trace would make a multi-megabyte page: merge runs of equal colour past a few thousand.
    per_cell = g.exact and sum(len(row.cells) for row in g.rows) <= MAX_CELL_RECTS
    for r, row in enumerate(g.rows):
        y = r * g.row_h
        if per_cell:
            for col, (_, cut) in sorted(row.cells.items()):
                kind = "cut" if cut else "linked"
                out.append(
                    f'<rect class="reached {kind}" x="{col * g.cell_w}" y="{y}" '
                    f'width="{g.cell_w}" height="{g.row_h}" '
                    f'fill="{_hex(_cell_colour(WHITE, 1.0, cut))}" stroke="#ffffff" '
                    'stroke-width="0.5"/>'
                )
        else:
            out.extend(_svg_runs(row, y, g))
        for x in row.marks:
            out.append(
                f'<rect class="backward" x="{max(x - 2, 0)}" y="{y}" width="2" '
                f'height="{g.row_h}" fill="{_hex(MARK)}"/>'
            )
        if r % every == 0:
            ty = y + min(g.row_h, 10) - 1
            out.append(
                f'<text x="-4" y="{ty}" text-anchor="end" font-size="10">{escape(row.label)}</text>'
            )
            out.append(
                f'<text x="{plot_w + 4}" y="{ty}" font-size="10">{escape(row.horizon)}</text>'
            )
    out.append(
        f'<rect x="0" y="0" width="{plot_w}" height="{plot_h}" fill="none" '
        f'stroke="{_hex(INK)}" stroke-width="0.5"/>'
    )
    out.append("</g>")
    out.append(f'<text x="{LEFT}" y="{g.height - 12}" font-size="11">{escape(LEGEND)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_runs(row: Row, y: int, g: Grid) -> list[str]:
    """Adjacent columns of the same (quantised) shade merged into one rect."""
    out = []
    run_start, run_colour = -1, None
    cols = sorted(row.cells)
    for i, col in enumerate(cols + [None]):  # type: ignore[list-item]
        colour = None
        if col is not None:
            frac, cut = row.cells[col]
            colour = _cell_colour(WHITE, round(frac * 8) / 8, round(cut * 4) / 4)
        contiguous = col is not None and i > 0 and col == cols[i - 1] + 1
        if run_colour is not None and (colour != run_colour or not contiguous):
            x0 = run_start * g.cell_w
            x1 = (cols[i - 1] + 1) * g.cell_w
            out.append(
                f'<rect class="reached-run" x="{x0}" y="{y}" width="{x1 - x0}" '
                f'height="{g.row_h}" fill="{_hex(run_colour)}"/>'
            )
            run_colour = None
        if colour is not None and run_colour is None:
            run_start, run_colour = col, colour
    return out


# ---------------------------------------------------------------------------------------------
# PNG

_FONT = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001010010",
    "8": "111101111101111",
    "9": "111101111001111",
    "A": "010101111101101",
    "B": "110101110101110",
    "C": "011100100100011",
    "D": "110101101101110",
    "E": "111100110100111",
    "F": "111100110100100",
    "G": "011100101101011",
    "H": "101101111101101",
    "I": "111010010010111",
    "K": "101110100110101",
    "L": "100100100100111",
    "M": "101111111101101",
    "N": "110101101101101",
    "O": "010101101101010",
    "P": "110101110100100",
    "R": "110101110101101",
    "S": "011100010001110",
    "T": "111010010010010",
    "U": "101101101101111",
    "V": "101101101101010",
    "W": "101101101111101",
    "X": "101101010101101",
    "Y": "101101010010010",
    "=": "000111000111000",
    "#": "101111101111101",
    "-": "000000111000000",
    ".": "000000000000010",
    ",": "000000000010100",
    ":": "000010000010000",
    "(": "010100100100010",
    ")": "010001001001010",
    " ": "000000000000000",
}
SCALE = 2


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(b"\xff" * (width * 3)) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, colour: RGB) -> None:
        x0, x1 = max(0, x0), min(self.width, x1)
        if x1 <= x0:
            return
        fill = bytes(colour) * (x1 - x0)
        for y in range(max(0, y0), min(self.height, y1)):
            self.rows[y][x0 * 3 : x1 * 3] = fill

    def text(self, x: int, y: int, text: str, colour: RGB = INK, anchor: str = "start") -> None:
        text = text.upper()
        advance = 4 * SCALE
        if anchor == "end":
            x -= len(text) * advance
        elif anchor == "middle":
            x -= len(text) * advance // 2
        for ch in text:
            glyph = _FONT.get(ch, _FONT[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    gx, gy = x + (i % 3) * SCALE, y + (i // 3) * SCALE
                    self.rect(gx, gy, gx + SCALE, gy + SCALE, colour)
            x += advance

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)  # filter type 0 per row

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def timeline_png(summary: TraceSummary) -> bytes:
    g = build_grid(summary)
    plot_w, plot_h = g.ncols * g.cell_w, len(g.rows) * g.row_h
    canvas = _Canvas(g.width, g.height)
    canvas.text(LEFT, 6, TITLE)
    background = bytearray(bytes(WHITE) * plot_w)
    for a, b in g.bands:
        background[a * 3 : b * 3] = bytes(BAND) * (b - a)
    for tick in _ticks(g.n_steps):
        x = tick * g.cell_w // g.bucket
        canvas.rect(LEFT + x, TOP - 4, LEFT + x + 1, TOP, INK)
        canvas.text(LEFT + x, TOP - 17, str(tick), anchor="middle")
    every = _label_every(g)
    gap = 1 if g.exact and g.cell_w >= 4 else 0  # white seams between cells when cells are big
    for r, row in enumerate(g.rows):
        line = bytearray(background)
        for col, (frac, cut) in row.cells.items():
            x0, x1 = col * g.cell_w, (col + 1) * g.cell_w - gap
            band = tuple(background[x0 * 3 : x0 * 3 + 3])
            line[x0 * 3 : x1 * 3] = bytes(_cell_colour(band, frac, cut)) * (x1 - x0)  # type: ignore[arg-type]
        for x in row.marks:
            # 1 px when a pixel holds several steps, so short windows stay visible beside it.
            a, b = max(x - (2 if g.cell_w > 1 else 1), 0), min(x, plot_w)
            line[a * 3 : b * 3] = bytes(MARK) * (b - a)
        y0 = TOP + r * g.row_h
        seam = 1 if g.row_h >= 6 else 0
        for y in range(y0, y0 + g.row_h - seam):
            canvas.rows[y][LEFT * 3 : (LEFT + plot_w) * 3] = line
        if r % every == 0:
            ty = y0 + max(0, (g.row_h - 10) // 2)
            # The 3x5 "#" reads as "H", so the PNG labels rows by number alone.
            canvas.text(LEFT - 4, ty, row.label.replace("#", ""), anchor="end")
            canvas.text(LEFT + plot_w + 4, ty, row.horizon)
    # Frame, so that an all-white row (nothing reached) is still visibly a row.
    canvas.rect(LEFT - 1, TOP - 1, LEFT + plot_w + 1, TOP, INK)
    canvas.rect(LEFT - 1, TOP + plot_h, LEFT + plot_w + 1, TOP + plot_h + 1, INK)
    canvas.rect(LEFT - 1, TOP, LEFT, TOP + plot_h, INK)
    canvas.rect(LEFT + plot_w, TOP, LEFT + plot_w + 1, TOP + plot_h, INK)
    canvas.text(LEFT, g.height - 16, LEGEND.replace("   ", "  "))
    return canvas.png()


def save_timeline(summary: TraceSummary, path: str | os.PathLike[str]) -> Path:
    """Write the timeline as `.svg` or `.png`, chosen by the suffix."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix == ".svg":
        out.write_text(timeline_svg(summary), encoding="utf-8")
    elif suffix == ".png":
        out.write_bytes(timeline_png(summary))
    else:
        raise ValueError(
            f"cannot save a timeline as {suffix or 'a file with no suffix'}: use .svg or .png"
        )
    return out
