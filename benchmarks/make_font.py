"""Write tbptt_lint/tracer/font_data.py: anti-aliased glyphs for the PNG timeline.

The pictures must draw text after `pip install tbptt-lint` alone, so the glyphs are stored
in the package as data. They are rasterised from Aileron Regular, the font Pillow ships as
its default, which is public domain (CC0). Only this script needs Pillow:

    pip install pillow && python benchmarks/make_font.py
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZES = (12, 15)  # body text, title
CHARS = "".join(chr(c) for c in range(32, 127)) + "–…·≥≤×→"
LEVELS = 15  # coverage stored as 0..15
OUT = Path(__file__).resolve().parents[1] / "tbptt_lint" / "tracer" / "font_data.py"


def rasterise(size: int) -> bytes:
    font = ImageFont.load_default(size=size)
    ascent, descent = font.getmetrics()
    height = ascent + descent
    out = bytearray(struct.pack("<HHH", size, ascent, height))
    out += struct.pack("<H", len(CHARS))
    for ch in CHARS:
        advance = round(font.getlength(ch) * 4)  # quarter pixels: no drift along a line
        left, _, right, _ = font.getbbox(ch, anchor="ls")
        left, right = min(left, 0), max(right, 1)
        width = right - left
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-left, ascent), ch, fill=255, font=font, anchor="ls")
        pixels = bytes(round(v * LEVELS / 255) for v in image.tobytes())
        out += struct.pack("<IHbB", ord(ch), advance, left, width)
        out += pixels
    return bytes(out)


def main() -> None:
    blobs = [rasterise(size) for size in SIZES]
    data = base64.b64encode(zlib.compress(b"".join(blobs), 9)).decode("ascii")
    lines = [data[i : i + 96] for i in range(0, len(data), 96)]
    body = "\n".join(f'    "{line}"' for line in lines)
    OUT.write_text(
        '"""Glyphs for the PNG pictures, made by benchmarks/make_font.py: do not edit.\n\n'
        "Rasterised from Aileron Regular (public domain, CC0), at sizes "
        f"{', '.join(map(str, SIZES))} px;\ncoverage 0..{LEVELS} per pixel, zlib, base64.\n"
        '"""\n\n'
        f"SIZES = {SIZES!r}\n"
        f"LEVELS = {LEVELS}\n"
        "GLYPHS = (\n" + body + "\n)\n",
        encoding="utf-8",
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
