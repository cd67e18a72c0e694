"""The timeline picture: rows of backward calls over time steps, as SVG and PNG."""

from __future__ import annotations

import struct
import time
import xml.etree.ElementTree as ET
import zlib

import pytest
from _render_synth import synth

from tbptt_lint.tracer import timeline
from tbptt_lint.tracer.timeline import save_timeline, timeline_png, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of a PNG written with filter type 0."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    rows = [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, rows


def count_colour(rows: list[bytes], colour: tuple[int, int, int]) -> int:
    needle = bytes(colour)
    return sum(sum(1 for x in range(0, len(r), 3) if r[x : x + 3] == needle) for r in rows)


def test_svg_has_one_shaded_cell_per_reached_step():
    s = synth(30, 5, "leak")
    root = ET.fromstring(timeline_svg(s))
    reached = [r for r in root.iter(f"{SVG}rect") if "reached" in r.get("class", "").split()]
    assert len(reached) == sum(len(c.reached_steps) for c in s.calls) == 5 + 10 + 15 + 20 + 25 + 30
    marks = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "backward"]
    assert len(marks) == len(s.calls)
    # In a leak only step 0 has no state flowing in; every row starts with it.
    cut = [r for r in reached if "cut" in r.get("class", "")]
    assert {r.get("x") for r in cut} == {"0"} and len(cut) == len(s.calls)


def test_svg_tells_detach_every_step_from_correct_tbptt():
    good = ET.fromstring(timeline_svg(synth(40, 10)))
    every = ET.fromstring(timeline_svg(synth(40, 10, "every")))

    def kinds(root: ET.Element) -> tuple[int, int]:
        classes = [r.get("class", "") for r in root.iter(f"{SVG}rect")]
        return sum("linked" in c for c in classes), sum("reached cut" in c for c in classes)

    assert kinds(good) == (36, 4)  # one cut (the window boundary) per row
    assert kinds(every) == (0, 40)  # every reached step is cut off from the one before


def test_png_is_valid_and_sized_from_the_grid():
    s = synth(50, 10, "leak")
    width, height, rows = decode_png(timeline_png(s))
    grid = timeline.build_grid(s)
    assert (width, height) == (grid.width, grid.height)
    assert grid.cell_w == timeline.MAX_CELL and grid.row_h == timeline.MAX_CELL
    assert count_colour(rows, timeline.MARK) > 0


def test_png_shows_leak_and_over_truncation_in_different_colours():
    def plot_rows(summary):  # the legend's swatches left out
        grid = timeline.build_grid(summary)
        return decode_png(timeline_png(summary))[2][: grid.top + grid.plot_h]

    leak_summary = synth(50, 10, "leak")
    leak_summary.expected_k2 = None  # no window known: a leak is blue all the way back
    leak = plot_rows(leak_summary)
    every = plot_rows(synth(50, 10, "every"))
    blue = timeline._cell_colour(timeline.WHITE, timeline.Cell(1.0, 0.0, 0.0))
    orange = timeline._cell_colour(timeline.WHITE, timeline.Cell(1.0, 1.0, 0.0))
    band_orange = timeline._cell_colour(timeline.BAND, timeline.Cell(1.0, 1.0, 0.0))
    red = timeline._cell_colour(timeline.WHITE, timeline.Cell(1.0, 0.0, 1.0))
    assert count_colour(every, blue) == 0
    assert count_colour(every, orange) + count_colour(every, band_orange) > 0
    # The leak's rows reach back to step 0: far more blue than one window's worth.
    assert count_colour(leak, blue) > 10 * count_colour(leak, orange)
    assert count_colour(leak, red) == 0
    # With k2 known, what lies before each row's window is red.
    judged = plot_rows(synth(50, 10, "leak"))
    assert count_colour(judged, red) > count_colour(judged, blue) > 0


def test_large_timeline_aggregates_and_stays_fast(tmp_path):
    s = synth(5000, 10, "leak")
    start = time.process_time()  # CPU seconds: a loaded machine does not trip the bound
    save_timeline(s, tmp_path / "t.png")
    save_timeline(s, tmp_path / "t.svg")
    assert time.process_time() - start < 15  # functional bound; ~1.5 s on 2 cores
    width, height, _ = decode_png((tmp_path / "t.png").read_bytes())
    assert width <= 1200 and height <= 1000
    root = ET.parse(tmp_path / "t.svg").getroot()
    runs = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "reached-run"]
    assert 500 <= len(runs) <= 2000  # merged runs, not one rect per step
    assert all(r.find(f"{SVG}title").text.startswith("steps ") for r in runs)  # tooltips
    assert (tmp_path / "t.svg").stat().st_size < 1_000_000


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="use .svg or .png"):
        save_timeline(synth(10, 5), tmp_path / "t.jpg")


def test_png_text_is_drawn_in_mixed_case_glyphs():
    # The legend's words are drawn with the stored glyphs: ink below the plot, and lower
    # case letters differ from capitals (the old 3x5 font had capitals only).
    from tbptt_lint.tracer import png_canvas

    face = png_canvas.face(png_canvas.BODY)
    assert face.glyph("a").pixels != face.glyph("A").pixels
    assert face.width("backward ran here") > 5 * len("backward ran here")  # not 3 px glyphs
    s = synth(30, 5)
    width, _height, rows = decode_png(timeline_png(s))
    grid = timeline.build_grid(s)
    legend = rows[grid.legend_top : grid.height]
    assert sum(r != b"\xff" * (3 * width) for r in legend) >= face.height
