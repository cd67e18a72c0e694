"""Apply the text edits of fixes to a source text, skipping fixes that would collide."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tbptt_lint.diagnostics import Fix

# Python's line breaks (str.splitlines would also break at \f, \x1c and others).
LINE_START = re.compile(r"\r\n|\r|\n")


def line_offsets(text: str) -> list[int]:
    """The offset in `text` at which each line starts (1-based line n at index n - 1)."""
    return [0, *(match.end() for match in LINE_START.finditer(text))]


def _offset(starts: list[int], text: str, position: tuple[int, int]) -> int:
    line, column = position
    if not 1 <= line <= len(starts):
        raise ValueError(f"edit position {position} lies outside the text")
    return min(starts[line - 1] + column - 1, len(text))


def apply_fixes(text: str, fixes: Sequence[Fix]) -> tuple[str, list[Fix]]:
    """`text` with the edits of every fix that does not overlap an earlier one (in source
    order), and the fixes applied. A fix whose edits all equal those of an applied fix (two
    findings of one leak) counts as applied. Overlapping fixes are left for the next round, as
    ruff does."""
    starts = line_offsets(text)
    accepted: list[tuple[int, int, str]] = []
    applied: list[Fix] = []

    def key(fix: Fix) -> tuple[int, int]:
        return min(edit.location for edit in fix.edits) if fix.edits else (0, 0)

    for fix in sorted(fixes, key=key):
        spans = [
            (_offset(starts, text, e.location), _offset(starts, text, e.end_location), e.content)
            for e in fix.edits
        ]
        if not spans:
            continue
        if all(span in accepted for span in spans):
            applied.append(fix)
            continue
        if any(_collide(span, other) for span in spans for other in accepted):
            continue
        accepted.extend(spans)
        applied.append(fix)
    pieces: list[str] = []
    cursor = 0
    for start, end, content in sorted(set(accepted)):
        pieces.append(text[cursor:start])
        pieces.append(content)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), applied


def _collide(span: tuple[int, int, str], other: tuple[int, int, str]) -> bool:
    start, end, _ = span
    other_start, other_end, _ = other
    if start == end or other_start == other_end:
        # An insertion collides with an edit it falls strictly inside, or with another
        # insertion at the same point (their order would be arbitrary).
        if start == end == other_start == other_end:
            return True
        return other_start < start < other_end or start < other_start < end
    return start < other_end and other_start < end
