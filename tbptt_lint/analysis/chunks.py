"""Top-level `def` and `class` blocks of a source text, found without parsing it.

libcst's parser is the largest cost of a run, and most blocks of a file that passed the
prefilter cannot hold a finding. Blocks are found from indentation alone, skipping the lines
that begin inside a string (a docstring or template with text at column 0), found by a small
lexer of strings and comments. A block still cut short makes the reduced text fail to parse,
and the caller then falls back to the whole file, so a wrong guess costs time, never a finding.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

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


# Comments and string literals, in the order Python's tokenizer meets them (a quote inside a
# comment, a `#` inside a string). Prefixes (r, b, f, u) change no string's extent.
_TOKENS = re.compile(
    r"#[^\r\n]*"
    r"|(?P<string>'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    r'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    r"|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'"
    r'|"[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*")',
    re.DOTALL,
)
# A string can span lines only with triple quotes or a backslash before the line break.
_MULTILINE_STRING_SIGNS = ("'''", '"""', "\\\n", "\\\r")
_SIGNS = re.compile(r"""'''|"{3}|\\\r?\n|\\\r""")
# What `str.splitlines` also ends a line at, inside a one-line string too.
_OTHER_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def top_level_blocks(source: str) -> Iterator[Block]:
    lines = source.splitlines(keepends=True)
    return _blocks(lines, 0, len(lines), "", inside_strings(source))


def inside_strings(text: str) -> Collection[int]:
    """Indices of the lines of `text` (as `str.splitlines` cuts it) that begin inside a string
    literal: they neither start nor end a block, whatever their indentation. The last few
    texts' answers are kept: one file's blocks are looked for by several analyses."""
    if not any(sign in text for sign in _MULTILINE_STRING_SIGNS):
        return ()
    return _inside_strings(text)


@lru_cache(maxsize=4)
def _inside_strings(text: str) -> frozenset[int]:
    if _OTHER_LINE_BREAKS.search(text) is not None:
        spans = [match.span() for match in _TOKENS.finditer(text) if match.lastgroup]
    else:
        spans = _multiline_strings(text)
    if not spans:
        return frozenset()
    starts = list(accumulate(map(len, text.splitlines(keepends=True)), initial=0))
    inside: set[int] = set()
    for begin, end in spans:
        inside.update(range(bisect_right(starts, begin), bisect_left(starts, end)))
    return frozenset(inside)


def _multiline_strings(text: str) -> list[tuple[int, int]]:
    """The spans of the string literals that run over a line break. Only the lines where a
    string may open over several (a triple quote, a backslash before the line break) are
    lexed, from their start: no other literal or comment spans lines, so a line start that
    no such string covers is outside every literal."""
    spans: list[tuple[int, int]] = []
    position = 0
    while (sign := _SIGNS.search(text, position)) is not None:
        at = sign.start()
        start = max(
            text.rfind("\n", position, at) + 1, text.rfind("\r", position, at) + 1, position
        )
        position = sign.end()  # a line continuation outside any literal
        for token in _TOKENS.finditer(text, start):
            begin, end = token.span()
            if end <= at:
                continue
            if begin <= at:
                position = end
                if token.lastgroup and (
                    text.count("\n", begin, end) or text.count("\r", begin, end)
                ):
                    spans.append((begin, end))
            break
    return spans


def _continues(line: str) -> bool:
    """Whether the line below `line` continues it: a backslash before the line break, outside
    a comment line (a def's signature continued at column 0 is still the def's)."""
    return line.rstrip("\r\n").endswith("\\") and not line.lstrip().startswith("#")


def _bracket_depth_change(text: str) -> int:
    """How many more brackets `text` opens than it closes, outside strings and comments."""
    if not any(bracket in text for bracket in "()[]{}"):
        return 0
    code = _TOKENS.sub("", text)
    opened = code.count("(") + code.count("[") + code.count("{")
    return opened - code.count(")") - code.count("]") - code.count("}")


def _blocks(
    lines: list[str], start: int, end: int, indent: str, strings: Collection[int] = ()
) -> Iterator[Block]:
    """def/class blocks whose header sits at exactly `indent` between lines start and end;
    `strings`: the indices of the lines that begin inside a string literal. A line that
    begins inside open brackets (`default=8):` at column 0 in a signature) continues the
    statement above, whatever its indentation."""
    depth = len(indent)
    current: int | None = None
    scanned = start  # brackets are counted up to the start of this line
    open_brackets = 0
    for number in range(start, end):
        line = lines[number]
        body = line[depth:] if line.startswith(indent) else ""
        if body[:1] in ("", " ", "\t", "\n", "\r", "#") or body.startswith(CONTINUATIONS):
            continue
        if number in strings or (number and _continues(lines[number - 1])):
            continue
        # Lines met here begin outside strings, so each stretch between two of them holds
        # whole strings and comments.
        open_brackets = max(
            0, open_brackets + _bracket_depth_change("".join(lines[scanned:number]))
        )
        scanned = number
        if open_brackets:
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
    strings = {block.first_line + number for number in inside_strings(block.text)}
    return _blocks(lines, block.first_line + 1, block.end_line, MEMBER_INDENT, strings)


def dedented(member: Block, indent: str = MEMBER_INDENT) -> str:
    """A member block's text moved to column 0, for parsing alone. Lines at its indentation
    lose it; a comment or blank line that is less indented (a `# section` comment at column
    0 between methods, or after the last one, which the block runs on to) is kept as a bare
    comment; any other less indented line begins inside a string or brackets, where
    indentation does not matter, and stays as it is. `textwrap.dedent` would leave the whole
    text indented, and unparsable, for one such line."""
    lines = []
    for line in member.text.splitlines(keepends=True):
        if line.startswith(indent):
            lines.append(line[len(indent) :])
        elif not line.strip() or line.lstrip().startswith("#"):
            lines.append(line.lstrip(" \t"))
        else:
            lines.append(line)
    return "".join(lines)


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
    strings = inside_strings(source)
    for block in list(_blocks(lines, 0, len(lines), "", strings)):
        if not wanted(block.text):
            _blank(lines, block, "")
        elif _is_class(block):
            _keep_members(lines, block, MEMBER_INDENT, wanted, strings)
    return "".join(lines)


def blank_blocks(text: str, blocks: Collection[Block]) -> str:
    """`text` with the given top-level blocks of it blanked out, line count unchanged."""
    lines = text.splitlines(keepends=True)
    for block in blocks:
        _blank(lines, block, "")
    return "".join(lines)


def prune_class(text: str, wanted: Callable[[str], bool]) -> str:
    """A class block's text with its unwanted methods (and those of its nested classes)
    blanked, as `keep_blocks` does inside a kept class."""
    lines = text.splitlines(keepends=True)
    strings = inside_strings(text)
    for block in list(_blocks(lines, 0, len(lines), "", strings)):
        if _is_class(block):
            _keep_members(lines, block, MEMBER_INDENT, wanted, strings)
    return "".join(lines)


def _keep_members(
    lines: list[str],
    block: Block,
    indent: str,
    wanted: Callable[[str], bool],
    strings: Collection[int] = (),
) -> None:
    for member in _blocks(lines, block.first_line + 1, block.end_line, indent, strings):
        if not wanted(member.text):
            _blank(lines, member, indent)
        elif _is_class(member):
            _keep_members(lines, member, indent + MEMBER_INDENT, wanted, strings)


def _blank(lines: list[str], block: Block, indent: str) -> None:
    for number in range(block.first_line, block.end_line):
        lines[number] = "\n"
    if indent:
        lines[block.first_line] = f"{indent}pass\n"


# A string's prefix letters (`rb'...'`, `f"..."`): an f-string's text holds code in braces.
_PREFIX = re.compile(r"[A-Za-z]{1,2}\Z")


@lru_cache(maxsize=4)
def code_text(text: str) -> str:
    """`text` with its comments and string literals (not f-strings, whose braces hold code)
    blanked to spaces, line breaks kept: a word the prefilters look for in a docstring or a
    comment (`>>> loss.backward()`) is no call. `text` itself when the lexer may not see the
    literals as Python does (a quote left over, or an f-string whose braces do not close
    inside it, as Python 3.12's nested quotes make them): blanking then could hide code."""
    pieces: list[str] = []
    position = 0
    for token in _TOKENS.finditer(text):
        begin, end = token.span()
        if token.lastgroup:
            prefix = _PREFIX.search(text, max(0, begin - 2), begin)
            if prefix is not None and "f" in prefix.group(0).lower():
                body = token.group(0).replace("{{", "").replace("}}", "")
                if body.count("{") != body.count("}"):
                    return text
                if "'" in text[position:begin] or '"' in text[position:begin]:
                    return text
                pieces.append(text[position:end])
                position = end
                continue
        between = text[position:begin]
        if "'" in between or '"' in between:
            return text  # a quote the lexer did not read as a literal: it lost its way
        pieces.append(between)
        pieces.append(_SPACED.sub(" ", token.group(0)))
        position = end
    rest = text[position:]
    if "'" in rest or '"' in rest:
        return text
    pieces.append(rest)
    return "".join(pieces)


_SPACED = re.compile(r"[^\r\n]")
