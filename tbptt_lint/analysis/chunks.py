"""Top-level `def` and `class` blocks of a source text, found without parsing it.

libcst's parser is the largest cost of a run, and most blocks of a file that passed the
prefilter cannot hold a finding. Blocks are found from indentation alone; a block cut short
(a docstring with text at column 0) makes the reduced text fail to parse, and the caller then
falls back to the whole file, so a wrong guess costs time, never a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK_STARTS = ("def ", "async def ", "class ", "@")
# Lines at column 0 that continue the statement above: black puts a multi-line signature's
# closing bracket there.
CONTINUATIONS = (")", "]", "}")


@dataclass(frozen=True)
class Block:
    first_line: int  # 0-based index of the block's first line
    end_line: int  # 0-based index one past its last line
    text: str


def top_level_blocks(source: str) -> Iterator[Block]:
    lines = source.splitlines(keepends=True)
    start: int | None = None
    for number, line in enumerate(lines):
        if line[:1] in ("", " ", "\t", "\n", "\r", "#") or line.startswith(CONTINUATIONS):
            continue
        if start is not None:
            if line.startswith(BLOCK_STARTS) and all(
                previous.startswith("@") or not previous.strip() for previous in lines[start:number]
            ):
                continue  # a decorator's function
            yield Block(start, number, "".join(lines[start:number]))
            start = None
        if line.startswith(BLOCK_STARTS):
            start = number
    if start is not None:
        yield Block(start, len(lines), "".join(lines[start:]))


def keep_blocks(source: str, wanted: Callable[[str], bool]) -> str:
    """The source with every top-level def/class block that is not `wanted` blanked out, line
    count and positions unchanged. Statements outside blocks (imports, scripts) stay."""
    lines = source.splitlines(keepends=True)
    for block in top_level_blocks(source):
        if not wanted(block.text):
            for number in range(block.first_line, block.end_line):
                lines[number] = "\n"
    return "".join(lines)
