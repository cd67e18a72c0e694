"""An RGB canvas written as PNG with zlib and struct, and anti-aliased text from the glyphs in
`font_data` (no imaging library: the pictures must work after `pip install` alone)."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from functools import cache

from tbptt_lint.tracer import font_data

RGB = tuple[int, int, int]
INK: RGB = (40, 40, 40)
BODY, TITLE = font_data.SIZES  # text sizes in px


@dataclass(frozen=True, slots=True)
class Glyph:
    advance: int  # quarter pixels
    left: int  # x of the bitmap's first column from the pen position
    width: int
    pixels: bytes  # coverage 0..LEVELS, `width` per row, `Face.height` rows


@dataclass(frozen=True)
class Face:
    size: int
    ascent: int
    height: int
    glyphs: dict[str, Glyph]

    def glyph(self, ch: str) -> Glyph:
        return self.glyphs.get(ch) or self.glyphs["?"]

    def width(self, text: str) -> int:
        return (sum(self.glyph(ch).advance for ch in text) + 3) // 4


@cache
def _faces() -> dict[int, Face]:
    data = zlib.decompress(base64.b64decode("".join(font_data.GLYPHS)))
    faces: dict[int, Face] = {}
    pos = 0
    while pos < len(data):
        size, ascent, height, count = struct.unpack_from("<HHHH", data, pos)
        pos += 8
        glyphs = {}
        for _ in range(count):
            code, advance, left, width = struct.unpack_from("<IHbB", data, pos)
            pos += 8
            glyphs[chr(code)] = Glyph(advance, left, width, data[pos : pos + width * height])
            pos += width * height
        faces[size] = Face(size, ascent, height, glyphs)
    return faces


def face(size: int = BODY) -> Face:
    return _faces()[size]


def text_width(text: str, size: int = BODY) -> int:
    return face(size).width(text)


class Canvas:
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

    def outline(self, x0: int, y0: int, x1: int, y1: int, colour: RGB, width: int = 1) -> None:
        """The border of the box [x0, x1) x [y0, y1), `width` px thick, inside it."""
        self.rect(x0, y0, x1, y0 + width, colour)
        self.rect(x0, y1 - width, x1, y1, colour)
        self.rect(x0, y0, x0 + width, y1, colour)
        self.rect(x1 - width, y0, x1, y1, colour)

    def text(
        self,
        x: int,
        y: int,
        text: str,
        colour: RGB = INK,
        anchor: str = "start",
        size: int = BODY,
    ) -> int:
        """Draw `text` with its top at `y` (a line is `face(size).height` tall), blended into
        what is under it; returns the x where it ends."""
        f = face(size)
        if anchor == "end":
            x -= f.width(text)
        elif anchor == "middle":
            x -= f.width(text) // 2
        levels = font_data.LEVELS
        pen = x * 4
        for ch in text:
            g = f.glyph(ch)
            gx = (pen + 2) // 4 + g.left
            pen += g.advance
            if not g.width or gx >= self.width or gx + g.width <= 0:
                continue
            for gy in range(f.height):
                row_y = y + gy
                if not 0 <= row_y < self.height:
                    continue
                row = self.rows[row_y]
                line = g.pixels[gy * g.width : (gy + 1) * g.width]
                for i, cover in enumerate(line):
                    px = gx + i
                    if not cover or not 0 <= px < self.width:
                        continue
                    at = px * 3
                    for k in range(3):
                        under = row[at + k]
                        row[at + k] = under + (colour[k] - under) * cover // levels
        return (pen + 3) // 4

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
