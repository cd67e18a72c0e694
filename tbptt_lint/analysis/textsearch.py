"""Fast textual tests: a pattern searched as several patterns that each begin with a literal.

Python's `re` finds a pattern that begins with a literal (`backward\\s*\\(`) by scanning for
that literal, which is fast; a pattern that begins with `\\b`, a look-behind or an alternation
(`\\bdetach\\b|\\.data\\b`) is tried at every position of the text, 20-80 times slower on whole
files. So a word boundary before a word is written after it, as a look-behind over the word
(`detach(?<!\\wdetach)`: the character before `detach` is no word character), and an
alternation becomes one pattern per alternative, each led by its literal.
"""

from __future__ import annotations

import re


class AnyOf:
    """Whether any of several patterns occurs in a text; each should begin with a literal."""

    __slots__ = ("patterns",)

    def __init__(self, *patterns: str, flags: int = 0) -> None:
        self.patterns = tuple(re.compile(pattern, flags) for pattern in patterns)

    def search(self, text: str) -> bool:
        return any(pattern.search(text) for pattern in self.patterns)


def word(name: str) -> str:
    """`\\bname`, as a pattern that begins with the literal (see the module's docstring)."""
    escaped = re.escape(name)
    return rf"{escaped}(?<!\w{escaped})"
