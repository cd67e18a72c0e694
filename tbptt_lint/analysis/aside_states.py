"""Cheap text tests for a step loop that keeps a one-step cell's new state aside (TBP015):
`o_t, new_state = self.cell(x_t, state)` while `state` is only ever rebound from itself
(`state = tuple(nd * s for s in state)`). Such a loop sits in a model's `forward`, in a file
that may run no backward of its own, so the file is read for it alone."""

from __future__ import annotations

import re
from collections.abc import Callable

# `a, new = callee(x, state)` or `new = callee(x, state)`: the state passed last, by name.
ASIDE_CALL = re.compile(
    r"(?m)^[ \t]*(?:[\w.]+[ \t]*,[ \t]*)*(\w+)[ \t]*=[ \t]*[\w.]+\([^\n]*,[ \t]*(\w+)[ \t]*\)"
    r"[ \t]*(?:#[^\n]*)?$"
)
MEMBER_FORWARD = re.compile(r"[ \t]+(?:async[ \t]+)?def[ \t]+forward\(")


def aside_calls(source: str) -> list[str]:
    """The lines of such calls whose state the file also rebinds from itself."""
    if "forward" not in source:
        return []  # the cell is a class of the file, whose `forward` is read
    found = []
    for match in ASIDE_CALL.finditer(source):
        new, passed = match.groups()
        if new in (passed, "_"):
            continue
        name = re.escape(passed)
        if re.search(rf"(?m)^[ \t]*{name}[ \t]*=[^=\n]*\b{name}\b", source):
            found.append(match.group(0).strip())
    return found


def may_keep_state_aside(source: str) -> bool:
    return bool(aside_calls(source))


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
