"""Colours and words shared by the graph pictures (node by node and condensed), so that the
same thing looks the same in both and the legends say the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbptt_lint.tracer.records import BackwardCall

# The timeline's colours: blue where the gradient arrived through carried state, orange where
# it stops, red for steps reached beyond the expected window, black for that window.
CUT_COLOUR = "#e6550d"  # the gradient stops here: carried state was cut or made anew (lines)
CUT_FILL = "#fd8d3c"  # a step the gradient stops at (the timeline's orange cell)
FLOW_COLOUR = "#222222"  # the gradient flows back through carried state
ENTRY_COLOUR = "#1f77b4"  # where the gradient enters from the loss
FULL_FILL = "#6baed6"  # reached by this backward
PART_FILL = "#c6dbef"  # partly reached
BEYOND_FILL = "#fcbba1"  # reached, but before the expected window (further back than k2)
BEYOND_BORDER = "#cb181d"
BEYOND_BACKGROUND = "#fee0d2"  # a node-by-node cluster further back than k2
K2_COLOUR = "#000000"  # the K2 boundary: where the expected window begins
CUT_TEXT = "the gradient stops here (state cut, made anew, or first step)"
BEYOND_TEXT = "reached beyond the expected window"


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
