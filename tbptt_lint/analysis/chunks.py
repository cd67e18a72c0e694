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
MEMBER_INDENT = "    "


@dataclass(frozen=True)
class Block:
    first_line: int  # 0-based index of the block's first line
    end_line: int  # 0-based index one past its last line
    text: str


def top_level_blocks(source: str) -> Iterator[Block]:
    lines = source.splitlines(keepends=True)
    return _blocks(lines, 0, len(lines), "")


def _blocks(lines: list[str], start: int, end: int, indent: str) -> Iterator[Block]:
    """def/class blocks whose header sits at exactly `indent` between lines start and end."""
    depth = len(indent)
    current: int | None = None
    for number in range(start, end):
        line = lines[number]
        body = line[depth:] if line.startswith(indent) else ""
        if body[:1] in ("", " ", "\t", "\n", "\r", "#") or body.startswith(CONTINUATIONS):
            continue
        if current is not None:
            if body.startswith(BLOCK_STARTS) and all(
                previous[depth:].startswith("@") or not previous.strip()
                for previous in lines[current:number]
            ):
                continue  # a decorator's function
            yield Block(current, number, "".join(lines[current:number]))
            current = None
        if body.startswith(BLOCK_STARTS):
            current = number
    if current is not None:
        yield Block(current, end, "".join(lines[current:end]))


def member_blocks(lines: list[str], block: Block) -> Iterator[Block]:
    """The def/class blocks directly inside a top-level class block."""
    return _blocks(lines, block.first_line + 1, block.end_line, MEMBER_INDENT)


def _is_class(block: Block) -> bool:
    stripped = (line.lstrip() for line in block.text.splitlines())
    header = next((line for line in stripped if line and not line.startswith("@")), "")
    return header.startswith("class ")


def keep_blocks(source: str, wanted: Callable[[str], bool]) -> str:
    """The source with every top-level def/class block that is not `wanted` blanked out, line
    count and positions unchanged. Inside a kept class, unwanted methods (indented four
    spaces) are blanked too, each leaving a `pass` so the class body stays valid, and so on
    into kept nested classes (test suites nest a whole file's tests in one inner class).
    Statements outside blocks (imports, scripts) stay."""
    lines = source.splitlines(keepends=True)
    for block in top_level_blocks(source):
        if not wanted(block.text):
            _blank(lines, block, "")
        elif _is_class(block):
            _keep_members(lines, block, MEMBER_INDENT, wanted)
    return "".join(lines)


def prune_class(text: str, wanted: Callable[[str], bool]) -> str:
    """A class block's text with its unwanted methods (and those of its nested classes)
    blanked, as `keep_blocks` does inside a kept class."""
    lines = text.splitlines(keepends=True)
    for block in _blocks(lines, 0, len(lines), ""):
        if _is_class(block):
            _keep_members(lines, block, MEMBER_INDENT, wanted)
    return "".join(lines)


def _keep_members(
    lines: list[str], block: Block, indent: str, wanted: Callable[[str], bool]
) -> None:
    for member in _blocks(lines, block.first_line + 1, block.end_line, indent):
        if not wanted(member.text):
            _blank(lines, member, indent)
        elif _is_class(member):
            _keep_members(lines, member, indent + MEMBER_INDENT, wanted)


def _blank(lines: list[str], block: Block, indent: str) -> None:
    for number in range(block.first_line, block.end_line):
        lines[number] = "\n"
    if indent:
        lines[block.first_line] = f"{indent}pass\n"
