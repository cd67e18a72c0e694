"""Draw the README's pictures: timeline, graph, condensed graph and report, correct and buggy.

    python benchmarks/readme_pictures.py            # writes docs/pictures/*.png
    python benchmarks/readme_pictures.py OUT_DIR    # somewhere else

Each fixture's `train()` runs under the tracer, `assert_tbptt(k1=K1, k2=K2)` is checked (so
the pictures know the expected window), and four small PNGs are written per run:

- `<run>_timeline.png`: `Trace.save_timeline`, as a user gets it;
- `<run>_graph.png`: the node-by-node graph of one backward (`save_graph`'s small-graph view);
- `<run>_condensed.png`: the condensed graph of the last backward, in rows narrow enough for
  the README's column (`condensed_dot(max_width=...)`; `save_graph` uses wider rows);
- `<run>_report.png`: the text of `Trace.report()`, drawn with the package's own glyphs
  (`png_canvas`), the table's columns lined up.

The PNGs are then stored with a palette (`shrink_png`, pure Python): half the bytes of
Graphviz's RGBA files. About 20 s in all. Needs torch, torchviz and a Graphviz renderer
(`pip install 'tbptt-lint[trace]'`). The fixtures seed themselves and the drawing has no
randomness: the same versions give the same files, so a diff of `docs/pictures/` after a
change shows which pictures it touched.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import struct
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
OUT = ROOT / "docs" / "pictures"
CONDENSED_WIDTH_PT = 735.0  # about 980 px: rows of one 10-step window, near the README column
REPORT_MARGIN = 12
REPORT_LINE_GAP = 3


@dataclass(frozen=True)
class Run:
    name: str  # "correct" or "buggy": the files' prefix
    fixture: str  # file name in fixtures/
    graph_call: int  # which backward the node-by-node graph draws


# The same word-language-model loop (nn.LSTM, windows of 10) done right and done wrong, so the
# pictures differ only where the bug is. For the buggy run the node-by-node graph draws
# backward #1: two windows, the earlier one already beyond k2, still small enough to read.
RUNS = (
    Run("correct", "ok_repackage_hidden.py", -1),
    Run("buggy", "bug_tbp005_retain_graph_bandaid.py", 1),
)


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"readme_fixture_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trace_fixture(path: Path):  # -> tbptt_lint.tracer.Trace (imports torch)
    """Run the fixture's `train()` under the tracer and check it against its K1/K2."""
    from tbptt_lint import trace

    module = _load(path)
    with trace(None) as t:
        module.train()
    # The buggy run fails; the verdict and the expected window are kept either way.
    with contextlib.suppress(AssertionError):
        t.assert_tbptt(k1=module.K1, k2=module.K2)
    return t


def report_png(text: str) -> bytes:
    """The text report as a PNG, in the package's own font. The table (from its `#  step`
    header to the next blank line) is laid out from the text's columns: a cell that ends
    where its header ends is right-aligned there (the numbers), others start where they start
    in the text, so the columns line up although the font is proportional."""
    from tbptt_lint.tracer.png_canvas import BODY, TITLE, Canvas, face

    lines = text.rstrip("\n").splitlines()
    body, title = face(BODY), face(TITLE)
    column = body.width("0") + 1  # one character of the fixed-width text
    table = [False] * len(lines)
    header_ends: set[int] = set()
    for i, line in enumerate(lines):
        if line.startswith("#  step"):
            header_ends = {m.end() for m in _CELL.finditer(line)}
        table[i] = bool(header_ends) and (
            line.startswith("#  step") or (table[i - 1] and line.strip() != "")
        )

    def width(i: int, line: str) -> int:
        if table[i]:
            return len(line) * column
        return (title if i == 0 else body).width(line)

    heights = [title.height + 2 * REPORT_LINE_GAP] + [body.height + REPORT_LINE_GAP] * (
        len(lines) - 1
    )
    w = max(width(i, line) for i, line in enumerate(lines)) + 2 * REPORT_MARGIN
    canvas = Canvas(w, sum(heights) + 2 * REPORT_MARGIN)
    y, colour = REPORT_MARGIN, INK
    for i, line in enumerate(lines):
        # The verdict's colour runs on over its indented continuation lines.
        colour = _line_colour(line, colour if line.startswith("  ") else INK)
        if i == 0:
            canvas.text(REPORT_MARGIN, y, line, colour, size=TITLE)
        elif table[i]:
            for m in _CELL.finditer(line):
                if set(m.group()) == {"-"}:  # the rule under the header: a line, not dashes
                    mid = y + body.ascent // 2 + 2
                    x0, x1 = m.start() * column, m.end() * column
                    canvas.rect(REPORT_MARGIN + x0, mid, REPORT_MARGIN + x1, mid + 1, GRID)
                elif m.end() in header_ends:
                    canvas.text(REPORT_MARGIN + m.end() * column, y, m.group(), colour, "end")
                else:
                    canvas.text(REPORT_MARGIN + m.start() * column, y, m.group(), colour)
        else:
            canvas.text(REPORT_MARGIN, y, line, colour)
        y += heights[i]
    return canvas.png()


_CELL = re.compile(r"\S+(?: \S+)*")  # table cells are two or more spaces apart
INK = (40, 40, 40)
GRID = (170, 170, 170)


def _line_colour(line: str, carried: tuple[int, int, int]) -> tuple[int, int, int]:
    if line.startswith("Verdict: ok"):
        return (35, 120, 50)
    if line.startswith("Verdict: FAILED"):
        return (190, 20, 25)
    return carried


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    """The pixel rows of an 8-bit, non-interlaced PNG's inflated image data."""
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        at = y * (stride + 1)
        kind, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + prev[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return rows


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def shrink_png(data: bytes) -> bytes:
    """The same picture with a palette of its 256 most used colours (the rest drawn in the
    nearest of them: anti-aliasing shades, not seen at 100%), on white; about half the bytes
    of Graphviz's RGBA files. Returns `data` itself when that is not smaller."""
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    if depth != 8 or colour not in (2, 6) or interlace:
        return data
    bpp = 3 if colour == 2 else 4
    pixels: list[list[bytes]] = []
    for line in _unfilter(zlib.decompress(idat), width, height, bpp):
        if bpp == 4:  # over white: the README's page is white, and a palette has no alpha
            line = bytearray(
                (line[i] * line[i - i % 4 + 3] + 255 * (255 - line[i - i % 4 + 3])) // 255
                for i in range(len(line))
                if i % 4 != 3
            )
        pixels.append([bytes(line[i : i + 3]) for i in range(0, len(line), 3)])
    counts = Counter(px for row in pixels for px in row)
    palette = [px for px, _ in counts.most_common(256)]
    index = {px: i for i, px in enumerate(palette)}
    for px in counts:
        if px not in index:
            index[px] = min(
                range(len(palette)),
                key=lambda i: sum((a - b) ** 2 for a, b in zip(px, palette[i], strict=True)),
            )
    raw = b"".join(b"\x00" + bytes(index[px] for px in row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    small = (
        data[:8]
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", b"".join(palette))
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
    return small if len(small) < len(data) else data


def make_pictures(fixture: Path, out_dir: Path, name: str, graph_call: int = -1) -> list[Path]:
    """Trace `fixture` and write `<name>_{timeline,graph,condensed,report}.png` into
    `out_dir`; returns the paths written."""
    from tbptt_lint.tracer.condensed import condensed_dot
    from tbptt_lint.tracer.graph_image import save_graph
    from tbptt_lint.tracer.render import render_dot

    t = trace_fixture(fixture)
    summary = t.summary()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{name}_{kind}.png" for kind in ("timeline", "graph", "condensed")}
    t.save_timeline(paths["timeline"])
    save_graph(summary, paths["graph"], graph_call, view="torchviz")
    dot = condensed_dot(summary, -1, max_width=CONDENSED_WIDTH_PT)
    paths["condensed"].write_bytes(render_dot(dot, "png"))
    report = out_dir / f"{name}_report.png"
    report.write_bytes(report_png(t.report()))
    written = [*paths.values(), report]
    for path in written:
        path.write_bytes(shrink_png(path.read_bytes()))
    return written


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else OUT
    for run in RUNS:
        for path in make_pictures(FIXTURES / run.fixture, out_dir, run.name, run.graph_call):
            print(f"{path} ({path.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main(sys.argv[1:])
