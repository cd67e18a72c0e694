"""Top-level `def` and `class` blocks of a source text, found without parsing it.

Phase 1 only needs the helpers other files import, so it parses just the blocks that can hold
one. A block cut short (a docstring with text at column 0) fails to parse and is skipped,
which costs recall across files, never precision.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_STARTS = ("def ", "async def ", "class ", "@")


@dataclass(frozen=True)
class Block:
    first_line: int  # 1-based
    text: str


def top_level_blocks(source: str) -> Iterator[Block]:
    lines = source.splitlines(keepends=True)
    start: int | None = None
    for number, line in enumerate(lines):
        at_column_zero = line[:1] not in ("", " ", "\t", "\n", "\r", "#")
        if not at_column_zero:
            continue
        if start is not None and not (line.startswith(BLOCK_STARTS) and _only_decorators(
            lines[start:number]
        )):
            yield Block(start + 1, "".join(lines[start:number]))
            start = None
        if start is None and line.startswith(BLOCK_STARTS):
            start = number
    if start is not None:
        yield Block(start + 1, "".join(lines[start:]))


def _only_decorators(lines: list[str]) -> bool:
    return all(line.startswith("@") or not line.strip() for line in lines)
