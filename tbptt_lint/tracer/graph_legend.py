"""Colours and words shared by the graph pictures (node by node and condensed), so that the
same thing looks the same in both and the legends say the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbptt_lint.tracer.records import BackwardCall

CUT_COLOUR = "#d62728"  # the gradient stops here: carried state was cut or made anew
FLOW_COLOUR = "#222222"  # the gradient flows back through carried state
ENTRY_COLOUR = "#1f77b4"  # where the gradient enters from the loss
FULL_FILL = "#6baed6"  # reached by this backward
PART_FILL = "#c6dbef"  # partly reached
BEYOND_FILL = "#fdd49e"  # reached, but before the expected window (further back than k2)
BEYOND_BORDER = "#d94801"
K2_COLOUR = "#d94801"  # the K2 boundary: where the expected window begins


def dot_escape(text: str) -> str:
    """Escape for a double-quoted DOT string; `\\n` sequences we put in stay line breaks."""
    return text.replace('"', '\\"')


def graph_title(call: BackwardCall, k2: int | None) -> str:
    """One line over either picture: which backward, how far back it reached, and the
    expected window when k2 is known."""
    reached = call.reached_steps
    title = f"backward #{call.index} after step {call.step}: stride {call.stride}"
    if reached:
        first, last = min(reached), max(reached)
        span = f"t={first}" if first == last else f"t={first}\u2013{last}"
        title += f", reached {span} (horizon {call.horizon})"
    else:
        title += f", horizon {call.horizon}"
    if k2 is not None:
        start = max(0, call.step - k2)
        title += f"; expected window (k2={k2}): t={start}\u2013{call.step - 1}"
    return title
