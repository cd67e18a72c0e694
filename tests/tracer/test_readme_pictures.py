"""benchmarks/readme_pictures.py: the README's pictures are made from a fixture, as small PNGs.

Not a golden image: the files must exist, be PNGs that decode, and stay small enough for a
README (bounded pixels and bytes).
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchviz")

from tbptt_lint.tracer import render

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import readme_pictures  # noqa: E402

MAX_SIDE_PX = 1200
MAX_BYTES = 150 * 1024


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) after checking the signature, every chunk's CRC and that the image
    data inflates to one filter byte plus the pixels of each row."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append(kind)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    channels = {2: 3, 3: 1, 6: 4}[colour]
    assert depth == 8
    assert len(zlib.decompress(idat)) == height * (1 + width * channels)
    return width, height


@pytest.mark.skipif(render.find_renderer() is None, reason="no Graphviz renderer")
def test_pictures_of_one_fixture_are_small_valid_pngs(tmp_path):
    fixture = ROOT / "fixtures" / "ok_repackage_hidden.py"
    paths = readme_pictures.make_pictures(fixture, tmp_path, "run")
    names = sorted(p.name for p in paths)
    assert names == [f"run_{kind}.png" for kind in ("condensed", "graph", "report", "timeline")]
    for path in paths:
        data = path.read_bytes()
        width, height = _png_size(data)
        assert 100 <= width <= MAX_SIDE_PX and 50 <= height <= MAX_SIDE_PX, (path.name, width)
        assert len(data) <= MAX_BYTES, (path.name, len(data))


def test_report_picture_grows_with_the_report_and_lines_up_the_table():
    short = "tbptt-lint trace: 1 backward call, 5 time steps\nVerdict: ok\n"
    table = "\n#  step  horizon\n-  ----  -------\n0     5        5\n1    10       10\n"
    w1, h1 = _png_size(readme_pictures.report_png(short))
    w2, h2 = _png_size(readme_pictures.report_png(short + table))
    assert h2 > h1 and w2 >= w1
    wide = short + "x" * 300 + "\n"
    assert _png_size(readme_pictures.report_png(wide))[0] > w1 + 500


def _filtered_png(rows: list[bytearray], width: int, height: int) -> bytes:
    """An RGB PNG whose rows use each of the five filter types in turn (Graphviz's files mix
    them), written from the PNG specification's definitions."""
    out, prev = [], bytes(width * 3)
    for y, row in enumerate(rows):
        kind = y % 5
        filtered = bytearray()
        for i, x in enumerate(row):
            a = row[i - 3] if i >= 3 else 0
            b, c = prev[i], (prev[i - 3] if i >= 3 else 0)
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            predict = (0, a, b, (a + b) // 2, paeth)[kind]
            filtered.append((x - predict) & 255)
        out.append(bytes([kind]) + bytes(filtered))
        prev = bytes(row)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"".join(out))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_shrunk_png_keeps_every_pixel_of_a_picture_with_few_colours():
    from tbptt_lint.tracer.png_canvas import Canvas

    canvas = Canvas(120, 40)
    canvas.rect(5, 5, 60, 20, (33, 113, 181))
    canvas.rect(60, 5, 110, 20, (203, 24, 29))
    canvas.text(4, 22, "t=40-49 cut", (40, 40, 40))  # anti-aliased: shades of one ink
    original = _filtered_png(canvas.rows, 120, 40)
    small = readme_pictures.shrink_png(original)
    assert len(small) < len(original) and _png_size(small) == (120, 40)
    palette = small[small.index(b"PLTE") + 4 :]
    (length,) = struct.unpack(">I", small[small.index(b"PLTE") - 4 : small.index(b"PLTE")])
    colours = [palette[i : i + 3] for i in range(0, length, 3)]
    idat = small.index(b"IDAT")
    (size,) = struct.unpack(">I", small[idat - 4 : idat])
    rows = readme_pictures._unfilter(zlib.decompress(small[idat + 4 : idat + 4 + size]), 120, 40, 1)
    assert [b"".join(colours[i] for i in row) for row in rows] == [bytes(r) for r in canvas.rows]
