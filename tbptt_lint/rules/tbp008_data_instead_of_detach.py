"""TBP008 data-instead-of-detach: `.data` is used to cut recurrent state."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import call_name
from tbptt_lint.analysis.walk import descendants
from tbptt_lint.diagnostics import SAFE, Edit, Finding, Fix
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.fixes import detached, replace_node


class DataInsteadOfDetach(Rule):
    """`.data` is used to cut recurrent state.

    `h.data` (or the old `Variable(h.data)`) does cut the graph, but it also bypasses
    autograd's version tracking: an in-place change to the result is not detected and can make
    gradients silently wrong. `h.detach()` cuts the same way and keeps the checks.
    """

    code = "TBP008"

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = hidden.data
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
""",
    )
    VALID = INVALID[:0] + (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16)
hidden = None
for x, y in batches:
    if hidden is not None:
        hidden = hidden.detach()
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            states = {state for call in unit.recurrent_calls for state in call.states}
            for cut in unit.data_cuts:
                if cut.name not in states:
                    continue
                message = (
                    f"`{cut.name}` is cut with `.data`, which bypasses autograd's checks for "
                    "in-place changes; use `.detach()`, which cuts the graph the same way"
                )
                yield model.finding(self.code, cut.node, message, _detach_instead(model, cut.node))


def _detach_instead(model: FileModel, cut: cst.CSTNode) -> Fix | None:
    """Every `x.data` in the cut becomes `x.detach()`, and `Variable(x.data)` becomes
    `x.detach()` too: a Variable of a `.data` is a leaf that needs no gradient, as is a detach."""
    edits: list[Edit] = []
    covered: set[int] = set()
    for node in descendants([cut], stop=(cst.Lambda,)):
        if id(node) in covered:
            continue
        if isinstance(node, cst.Call) and (call_name(node) or "").split(".")[-1] == "Variable":
            inner = node.args[0].value if node.args else None
            if not _is_data(inner):
                continue
            if len(node.args) != 1 or node.args[0].keyword is not None:
                return None  # `Variable(h.data, requires_grad=True)` is not a detach
            assert isinstance(inner, cst.Attribute)
            edits.append(replace_node(model, node, detached(model.code(inner.value))))
            covered.add(id(inner))
        elif _is_data(node):
            assert isinstance(node, cst.Attribute)
            edits.append(replace_node(model, node, detached(model.code(node.value))))
    if not edits:
        return None
    return Fix("Use `.detach()` instead of `.data`", SAFE, tuple(edits))


def _is_data(node: cst.CSTNode | None) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == "data"
