"""The cut TBP001 and TBP002 suggest and insert is shaped like the state: a flat element-wise
`detach()` only where the elements are known to be tensors (on tuples it raises
AttributeError), the per-layer form for a list of `(h, c)` tuples, and no fix but a recursive
`repackage_hidden` where the state is nested in another way or its shape is unknown."""

from __future__ import annotations

import textwrap

from tbptt_lint.analysis.api import check_source
from tbptt_lint.diagnostics import Finding
from tbptt_lint.edits import apply_fixes
from tbptt_lint.settings import Settings


def findings(source: str) -> list[Finding]:
    return check_source(textwrap.dedent(source), "example.py", Settings())


def only(source: str, code: str) -> Finding:
    found = findings(source)
    assert [f.code for f in found] == [code], found
    return found[0]


PER_LAYER_PAIRS_H_ONLY = """\
    def train(model, data, optimizer, bptt):
        hidden = model.init_hidden(4)
        for i in range(0, data.size(0) - 1, bptt):
            hidden = [(h.detach(), c) for h, c in hidden]
            out, hidden = model(data[i:i + bptt], hidden)
            loss = (out - data[i + 1:i + 1 + bptt]).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    """


def test_a_list_of_per_layer_pairs_gets_a_cut_of_every_tensor_in_it() -> None:
    finding = only(PER_LAYER_PAIRS_H_ONLY, "TBP002")
    cut = "hidden = [tuple(s.detach() for s in layer) for layer in hidden]"
    assert f"`{cut}`" in finding.message
    assert finding.fix is not None
    assert [edit.content.strip() for edit in finding.fix.edits] == [cut]
    fixed, applied = apply_fixes(textwrap.dedent(PER_LAYER_PAIRS_H_ONLY), [finding.fix])
    assert applied
    assert findings(fixed) == []


def test_a_state_nested_in_another_way_gets_no_fix_and_a_recursive_cut() -> None:
    finding = only(PER_LAYER_PAIRS_H_ONLY.replace("(h.detach(), c)", "[h.detach(), [c]]"), "TBP002")
    assert finding.fix is None
    assert "`hidden = repackage_hidden(hidden)`" in finding.message
    assert "s.detach() for s in hidden" not in finding.message


def test_elements_that_may_be_tuples_get_no_flat_cut() -> None:
    source = """\
        hidden = [init_layer(layer) for layer in range(3)]
        for i in range(0, data.size(0) - 1, 8):
            out, hidden = model(data[i:i + 8], hidden)
            out.sum().backward()
        """
    finding = only(source, "TBP001")
    assert finding.fix is None
    assert "repackage_hidden(hidden)" in finding.message


def test_a_list_of_tensors_keeps_its_element_wise_fix() -> None:
    source = """\
        import torch

        mems = [torch.zeros(4, 16) for _ in range(3)]
        for i in range(0, data.size(0) - 1, 8):
            out, mems = model(data[i:i + 8], mems)
            out.sum().backward()
        """
    finding = only(source, "TBP001")
    assert finding.fix is not None
    assert [e.content.strip() for e in finding.fix.edits] == ["mems = [s.detach() for s in mems]"]


CUSTOM_MODEL = """\
    import torch.nn as nn

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnns = nn.ModuleList([nn.LSTM(8, 8) for _ in range(2)])

        def forward(self, x, hidden):
            new_hidden = []
            for layer, rnn in enumerate(self.rnns):
                x, new_h = rnn(x, hidden[layer])
                new_hidden.append(new_h)
            return x, new_hidden

    def train(data, optimizer):
        model = Model()
        hidden = model.init_hidden(4)
        for i in range(0, data.size(0) - 1, 8):
            out, hidden = model(data[i:i + 8], hidden)
            out.sum().backward()
    """


def test_the_state_of_a_custom_module_is_not_taken_for_a_tensor() -> None:
    finding = only(CUSTOM_MODEL, "TBP001")
    assert finding.fix is None
    assert "`hidden = hidden.detach()` for a tensor" in finding.message
    assert "`hidden = tuple(s.detach() for s in hidden)` for a tuple of tensors" in finding.message
    assert "recursive `repackage_hidden(hidden)` for nested tuples and lists" in finding.message


def test_the_suggestion_reads_as_balanced_text() -> None:
    message = only(CUSTOM_MODEL, "TBP001").message
    assert message.count("(") == message.count(")")
    assert message.count("`") % 2 == 0
    assert "Cut it once per window, after the backward (or at the top of the loop): `" in message
