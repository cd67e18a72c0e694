"""TBP014 detach-inplace-on-view: `detach_()` is called on a view, which raises at runtime."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from tbptt_lint.analysis.events import InplaceDetachOnView
from tbptt_lint.analysis.model import FileModel
from tbptt_lint.analysis.names import dotted_name
from tbptt_lint.diagnostics import SAFE, Finding, Fix
from tbptt_lint.rules.base import Rule
from tbptt_lint.rules.fixes import is_whole_statement, rebind_detached, replace_node


class DetachInplaceOnView(Rule):
    """`detach_()` is called on a view, which raises at runtime.

    Indexing a tensor (`out[-1]`, `h[0]`) returns a view, and PyTorch refuses to detach a view
    in place: "Can't detach views in-place. Use detach() instead." Rebind the name with the
    out-of-place form instead. An attribute that one method stores a view in
    (`self.feed = out[-1].unsqueeze(0)`) and another detaches in place is reported too.
    Indexing a tuple of states (`hidden[0]` of an LSTM) is not a view, and indexing what is not
    known to be a tensor (a user's model's state) is not reported.
    """

    code = "TBP014"

    INVALID = (
        """
import torch.nn as nn
rnn = nn.GRU(8, 16, num_layers=2)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
    hidden[0].detach_()
""",
    )
    VALID = (
        """
import torch.nn as nn
rnn = nn.LSTM(8, 16)
hidden = None
for x, y in batches:
    out, hidden = rnn(x, hidden)
    (out - y).pow(2).mean().backward()
    hidden[0].detach_()
    hidden[1].detach_()
""",
    )

    def check(self, model: FileModel) -> Iterator[Finding]:
        for unit in model.units:
            for event in unit.inplace_view_detaches:
                if event.made is not None:
                    yield self._attribute_view(model, event, event.made)
                    continue
                message = (
                    f"`{event.target}` is a view of a tensor, and `detach_()` on a view raises "
                    '"Can\'t detach views in-place". Detach the whole tensor '
                    "(`x = x.detach()`) or rebind the slice out of place"
                )
                yield model.finding(self.code, event.node, message, _rebind(model, event))

    def _attribute_view(
        self, model: FileModel, event: InplaceDetachOnView, made: cst.CSTNode
    ) -> Finding:
        """An attribute that another method sets to a view, detached in place here."""
        which = (
            f"`{event.target}`"
            if event.target == event.holder
            else f"`{event.target}` (from `{event.state}`) may be `{event.holder}`, which"
        )
        message = (
            f"{which} is set to a view of a tensor at line {model.line(made)}, and "
            '`detach_()` on a view raises "Can\'t detach views in-place". Store a whole tensor '
            "there (`.clone()`, or `.detach()` where it is set) or detach it out of place"
        )
        return model.finding(self.code, event.node, message, _rebind(model, event))


def _rebind(model: FileModel, event: InplaceDetachOnView) -> Fix | None:
    """`view.detach_()` becomes `view = view.detach()` for a name bound to a view, and
    `hidden[i].detach_()` becomes `hidden = hidden.detach()`: the whole tensor is cut out of
    place, which is what detaching each slice in place was meant to do."""
    call = event.node
    if not isinstance(call.func, cst.Attribute) or not is_whole_statement(model, call):
        return None
    view = call.func.value
    if isinstance(view, cst.Subscript):
        view = view.value
    name = dotted_name(view)
    if name is None or name not in (event.target, event.state):
        return None  # `hidden[0][-1]`: a view of one element of a tuple of states
    if view is call.func.value and name == event.target != event.state:
        return None  # `for h in hidden: h.detach_()`: rebinding `h` would cut nothing
    cut = rebind_detached(name)
    return Fix(f"Rebind out of place: `{cut}`", SAFE, (replace_node(model, call, cut),))
