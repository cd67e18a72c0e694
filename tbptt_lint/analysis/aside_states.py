"""Cheap text tests for a step loop that keeps a one-step cell's new state aside (TBP015):
`o_t, new_state = self.cell(x_t, state)` while `state` is only ever rebound from itself
(`state = tuple(nd * s for s in state)`, `h = h * mask[t]`). Such a loop sits in a model's
`forward`, in a file that may run no backward of its own, so the file is read for it alone."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

# A call that binds a tuple and passes a state last, by name, to an object the file built.
TUPLE_CALL = (
    r"[ \t]*(?:[\w.]+[ \t]*,[ \t]*)+(\w+)[ \t]*=[ \t]*(?:{callees})\([^\n]*,[ \t]*(\w+)[ \t]*\)"
    r"[ \t]*(?:#[^\n]*)?"
)
MEMBER_FORWARD = re.compile(r"[ \t]+(?:async[ \t]+)?def[ \t]+forward\(")
CLASS_NAME = re.compile(r"\nclass[ \t]+(\w+)")
INSTANTIATED = re.compile(r"=[ \t]*([A-Z]\w*)\(")
BOUND_BEFORE = re.compile(r"[ \t]*(\w+)[ \t]*=[ \t]*")


def aside_calls(source: str, built_here: bool = True) -> list[str]:
    """The lines of such calls whose state the file also rebinds from itself, by a mask or a
    comprehension. The callee is an attribute (`self.cell(`); with `built_here`, also a name
    the file binds to a class it defines (`cell = ConvLSTMCell(...)`)."""
    if "forward" not in source:
        return []  # the cell is a class of the file, whose `forward` is read
    callees = [r"self\.\w+"] if "= self." in source else []
    if built_here:
        callees.extend(sorted(_built_here(source)))
    if not callees:
        return []
    line = re.compile(TUPLE_CALL.format(callees="|".join(callees)))
    anchor = re.compile(rf"=[ \t]*(?:{'|'.join(callees)})\(")
    found = []
    masked: dict[str, bool] = {}
    for position in _anchors(source, anchor, built_here):
        start = source.rfind("\n", 0, position) + 1
        if "," not in source[start:position]:
            continue  # no tuple bound
        end = source.find("\n", position)
        end = len(source) if end < 0 else end
        full = line.fullmatch(source, start, end)
        if full is None:
            continue
        new, passed = full.groups()
        if new in (passed, "_"):
            continue
        if passed not in masked:
            masked[passed] = _masked_in_place(source, passed)
        if masked[passed]:
            found.append(source[start:end].strip())
    return found


def may_keep_state_aside(source: str) -> bool:
    """For any file, before it is parsed (kept cheap: only `self.` callees)."""
    return bool(aside_calls(source, built_here=False))


def aside_state_blocks(source: str) -> Callable[[str], bool] | None:
    """Which blocks to keep for it: the blocks that hold such a call, and the classes of the
    file with a `forward` (the cell's class among them) with that `forward`. None when the
    file holds no such call."""
    calls = aside_calls(source)
    if not calls:
        return None

    def wanted(text: str) -> bool:
        if any(call in text for call in calls):
            return True
        if text.startswith((" ", "\t")):
            return MEMBER_FORWARD.match(text) is not None  # a member of a kept class
        return text.lstrip().startswith("class") and "def forward(" in text

    return wanted


def _built_here(source: str) -> set[str]:
    """The names the file binds to an object of a class it defines (`cell = Cell(...)`)."""
    names: set[str] = set()
    if "\nclass " not in source:
        return names
    built = set(INSTANTIATED.findall(source))
    for cls in CLASS_NAME.findall("\n" + source):
        if cls not in built:
            continue
        position = source.find(f"{cls}(")
        while position >= 0:
            start = source.rfind("\n", 0, position) + 1
            bound = BOUND_BEFORE.fullmatch(source, start, position)
            if bound is not None:
                names.add(bound.group(1))
            position = source.find(f"{cls}(", position + 1)
    return names


def _anchors(source: str, anchor: re.Pattern[str], built_here: bool) -> Iterator[int]:
    """Where a candidate call's `=` sits: `= self.` found as plain text when only attributes
    are callees (every file is tested so, before it is parsed), else by `anchor`."""
    if built_here:
        yield from (match.start() for match in anchor.finditer(source))
        return
    position = source.find("= self.")
    while position >= 0:
        yield position
        position = source.find("= self.", position + 1)


def _masked_in_place(source: str, name: str) -> bool:
    """Whether a line rebinds `name` from itself by a mask or a comprehension
    (`state = tuple(nd * s for s in state)`, `h = h * mask[t]`)."""
    escaped = re.escape(name)
    line = re.compile(rf"[ \t]*{escaped}[ \t]*=[^=\n]*(?:\*|\bfor\b)[^\n]*\b{escaped}\b[^\n]*")
    position = source.find(f"{name} =")
    while position >= 0:
        start = source.rfind("\n", 0, position) + 1
        end = source.find("\n", position)
        if line.fullmatch(source, start, len(source) if end < 0 else end):
            return True
        position = source.find(f"{name} =", position + 1)
    return False
