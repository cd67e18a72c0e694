"""Small plain-words helpers shared by the reports and the assertions (no torch here: the
reports of a saved trace are read without it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

from tbptt_lint.tracer.records import BackwardCall

T = TypeVar("T", bound=Hashable)

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: int) -> str:
    """1536 -> "1.5 KiB"; binary units, as memory is counted."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 step', '5 steps'."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def typical(values: Sequence[T]) -> tuple[T, int] | None:
    """The most common value and how often it occurs; on a tie, the one seen last (the
    steady state is where a run ends up). None for no values."""
    if not values:
        return None
    counts = Counter(values)
    last_seen = {value: i for i, value in enumerate(values)}
    best = max(counts, key=lambda value: (counts[value], last_seen[value]))
    return best, counts[best]


def window_role(index: int, typical_indices: Sequence[int]) -> str:
    """'ramp-up' before the first typical window, 'tail' after the last, '' between."""
    if not typical_indices:
        return ""
    if index < typical_indices[0]:
        return "ramp-up"
    if index > typical_indices[-1]:
        return "tail"
    return ""


def odd_windows(
    calls: Sequence[BackwardCall], is_typical: Callable[[BackwardCall], bool], limit: int = 3
) -> list[str]:
    """'#53 (tail) reached back 4 steps' for the calls that are not typical, the first few."""
    typical_indices = [i for i, call in enumerate(calls) if is_typical(call)]
    odd = [(i, call) for i, call in enumerate(calls) if not is_typical(call)]
    out = []
    for i, call in odd[:limit]:
        role = window_role(i, typical_indices)
        label = f"#{call.index}" + (f" ({role})" if role else "")
        out.append(f"{label} reached back {plural(call.horizon, 'step')}")
    if len(odd) > limit:
        out.append(f"{len(odd) - limit} more")
    return out
