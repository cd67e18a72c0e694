"""TBP010 batch-dim-sliced: time windows are sliced along the batch axis."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.analysis.windows import WindowLoop, WindowSlice, window_loops
from tbptt_lint.diagnostics import Finding
from tbptt_lint.rules.base import Rule


class BatchDimSliced(Rule):
    """Time windows are sliced along the batch axis.

    A `batch_first=True` RNN reads input as (batch, time, features), so `x[i:i + k]` takes k
    sequences with all their steps instead of k steps of every sequence: each "window" is the
    whole sequence for a few samples, and the carried state mixes samples. The same happens
    when the loop runs over `x.size(1)` (time, for batch-first data) but slices dimension 0.
    Slice the time axis: `x[:, i:i + k]`.
    """

    code = "TBP010"
    runtime_visible = True

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16, batch_first=True)
hidden = None
for i in range(0, x.size(1), 10):
    out, hidden = rnn(x[i:i + 10], hidden)
    (out - y[i:i + 10]).pow(2).mean().backward()
    hidden = hidden.detach()
""",
    )
    VALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16, batch_first=True)
hidden = None
for i in range(0, x.size(1), 10):
    out, hidden = rnn(x[:, i:i + 10], hidden)
    (out - y[:, i:i + 10]).pow(2).mean().backward()
    hidden = hidden.detach()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for window in window_loops(model.loops()):
            time_axis_one = _loops_over_axis_one(window)
            feeds = _slices_feeding_batch_first(model, window)
            for piece in window.slices:
                if piece.dimension != 0:
                    continue
                if id(piece.subscript) in feeds:
                    reason = f"`{feeds[id(piece.subscript)]}` is `batch_first=True`"
                elif time_axis_one is not None and piece.sliced == time_axis_one:
                    reason = f"the loop runs over `{piece.sliced}`'s dimension 1"
                else:
                    continue
                message = (
                    f"`{model.code(piece.subscript)}` cuts the window along dimension 0, the "
                    f"batch axis, but {reason}: each window takes whole sequences of a few "
                    "samples instead of a few steps of every sample. Slice the time axis, "
                    f"e.g. `{piece.sliced or 'x'}[:, ...]`"
                )
                yield model.finding(self.code, piece.subscript, message)


def _loops_over_axis_one(window: WindowLoop) -> str | None:
    """`x` when the loop's range stops at `x.size(1)` or `x.shape[1]` (or an expression of it)."""
    if window.stop is None:
        return None
    for node in descendants([window.stop]):
        if isinstance(node, cst.Call) and _is_one(node.args[0].value if node.args else None):
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "size":
                return dotted_name(node.func.value)
        elif isinstance(node, cst.Subscript) and len(node.slice) == 1:
            index = node.slice[0].slice
            is_shape = isinstance(node.value, cst.Attribute) and node.value.attr.value == "shape"
            if is_shape and isinstance(index, cst.Index) and _is_one(index.value):
                return dotted_name(node.value.value)  # type: ignore[attr-defined]
    return None


def _is_one(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Integer) and node.value == "1"


def _slices_feeding_batch_first(model: FileModel, window: WindowLoop) -> dict[int, str]:
    """Slices passed (directly or through one name) to a batch-first recurrent module."""
    nodes = list(descendants([window.loop.body]))
    by_id = {id(piece.subscript): piece for piece in window.slices}
    # `inp = x[i:i + k]` then `rnn(inp, h)`: the name a slice was bound to.
    aliases: dict[str, WindowSlice] = {
        name: by_id[id(node.value)]
        for node in nodes
        if isinstance(node, cst.Assign)
        and id(node.value) in by_id
        and len(node.targets) == 1
        and (name := dotted_name(node.targets[0].target)) is not None
    }
    feeds: dict[int, str] = {}
    for node in nodes:
        if not isinstance(node, cst.Call) or not node.args:
            continue
        callee = dotted_name(node.func)
        built = model.context.construction_of(callee)
        if built is None or not model.context.is_recurrent_class(built.qualified_class):
            continue
        if not built.flag("batch_first"):
            continue
        first = node.args[0].value
        if id(first) in by_id:
            feeds[id(first)] = callee or ""
        name = dotted_name(first)
        if name in aliases:
            feeds[id(aliases[name].subscript)] = callee or ""
    return feeds
