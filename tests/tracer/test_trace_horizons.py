"""Exact horizons and strides for the loops TBPTT code is written with."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import (  # noqa: E402
    CutInForward,
    TinyCell,
    cell_windows,
    k1k2_chain,
    sequence_windows,
)

from tbptt_lint import trace  # noqa: E402


def measured(t) -> tuple[list[int], list[int]]:
    calls = t.calls
    return [c.stride for c in calls], [c.horizon for c in calls]


@pytest.mark.parametrize(
    ("cell_cls", "lstm"), [(nn.RNNCell, False), (nn.GRUCell, False), (nn.LSTMCell, True)]
)
def test_cell_windows(cell_cls, lstm):
    with trace(None) as t:
        cell_windows(cell_cls(4, 6), lstm=lstm)
    assert measured(t) == ([10] * 4, [10] * 4)
    assert [c.step for c in t.calls] == [10, 20, 30, 40]
    t.assert_tbptt(k1=10, k2=10)


def test_model_argument_hooks_only_that_model():
    cell = nn.GRUCell(4, 6)
    other = nn.RNNCell(4, 6)
    with trace(cell) as t:
        other(torch.randn(3, 4))  # not part of the traced model: not a step
        cell_windows(cell, window=5, steps=20)
    assert measured(t) == ([5] * 4, [5] * 4)


@pytest.mark.parametrize("rnn_cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
def test_sequence_modules(rnn_cls, layers, batch_first):
    rnn = rnn_cls(4, 6, num_layers=layers, batch_first=batch_first)
    with trace(rnn) as t:
        sequence_windows(rnn, window=8, steps=24)
    assert measured(t) == ([8] * 3, [8] * 3)
    assert len(t.steps) == 24


@pytest.mark.parametrize("rnn_cls", [nn.LSTM, nn.GRU])
def test_sequence_module_leak_grows(rnn_cls):
    rnn = rnn_cls(4, 6, batch_first=True)
    with trace(None) as t:
        sequence_windows(rnn, window=8, steps=32, leak=True)
    assert measured(t) == ([8] * 4, [8, 16, 24, 32])


def test_lstm_c_leaks_while_h_is_cut():
    with trace(None) as t:
        cell_windows(nn.LSTMCell(4, 6), lstm=True, detach_c=False, retain_graph=True, steps=30)
    assert measured(t) == ([10] * 3, [10, 20, 30])
    with pytest.raises(AssertionError, match="grows by 10 every window") as info:
        t.assert_tbptt(k1=10, k2=10)
    message = str(info.value)
    assert "`c`" in message and "Only `c` leaks" in message


def test_fused_lstm_c_leak_is_named():
    lstm = nn.LSTM(4, 6)
    x = torch.randn(30, 2, 4)
    with trace(lstm) as t:
        h = c = torch.zeros(1, 2, 6)
        for s in range(0, 30, 10):
            out, (h, c) = lstm(x[s : s + 10], (h.detach(), c))  # c is never cut
            out.sum().backward(retain_graph=True)
    assert [c.horizon for c in t.calls] == [10, 20, 30]
    # The state enters the second call at its first step, 10, not at its last, 19.
    findings = " ".join(t.findings)
    assert "`c` passed to 'LSTM' at step 10 still references the graph of step 9" in findings


def test_detach_every_step_is_horizon_one():
    with trace(None) as t:
        cell_windows(nn.LSTMCell(4, 6), lstm=True, detach_every_step=True)
    assert measured(t) == ([10] * 4, [1] * 4)
    with pytest.raises(AssertionError, match="cut at every step"):
        t.assert_tbptt(k1=10, k2=10)


def test_no_grad_warmup_counts_toward_stride():
    cell = nn.LSTMCell(4, 6)
    x = torch.randn(45, 2, 4)
    with trace(None) as t:
        h = c = torch.zeros(2, 6)
        for start in range(0, 45, 15):
            with torch.no_grad():
                for i in range(start, start + 5):
                    h, c = cell(x[i], (h, c))
            loss = torch.zeros(())
            for i in range(start + 5, start + 15):
                h, c = cell(x[i], (h, c))
                loss = loss + h.sum()
            loss.backward()
    assert measured(t) == ([15] * 3, [10] * 3)
    assert [s.grad_enabled for s in t.steps[:6]] == [False] * 5 + [True]
    t.assert_tbptt(k1=15, k2=10)


def test_gradient_accumulation_across_windows():
    cell = nn.GRUCell(4, 6)
    opt = torch.optim.SGD(cell.parameters(), lr=0.1)
    with trace(None) as t:
        h = torch.zeros(2, 6)
        x = torch.randn(60, 2, 4)
        for w, start in enumerate(range(0, 60, 10)):
            h = h.detach()
            loss = torch.zeros(())
            for i in range(start, start + 10):
                h = cell(x[i], h)
                loss = loss + h.sum()
            (loss / 3).backward()
            if w % 3 == 2:
                opt.step()
                opt.zero_grad()
    assert measured(t) == ([10] * 6, [10] * 6)
    assert t.optimizer_steps == 2
    t.assert_tbptt(k1=10, k2=10)


def test_state_cut_inside_forward():
    model = CutInForward(4, 6)
    x = torch.randn(40, 2, 4)
    with trace(model) as t:
        h = torch.zeros(2, 6)
        for start in range(0, 40, 10):
            out, h = model(x[start : start + 10], h)
            out.pow(2).mean().backward()
    assert measured(t) == ([10] * 4, [10] * 4)
    assert {s.module for s in t.steps} == {"cell"}


def test_hand_written_cell_found_automatically():
    with trace(None) as t:
        cell_windows(TinyCell(4, 6), window=6, steps=24)
    assert measured(t) == ([6] * 4, [6] * 4)
    assert {s.module for s in t.steps} == {"TinyCell"}


def test_hand_written_cell_found_with_detach_every_step():
    # The fed-back input is h.detach(): a new tensor sharing storage with the output.
    with trace(None) as t:
        cell_windows(TinyCell(4, 6), window=6, steps=24, detach_every_step=True)
    assert measured(t) == ([6] * 4, [1] * 4)


class ScriptedCellModel(nn.Module):
    """A model whose cell is scripted: torch.jit.script modules refuse per-module hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = torch.jit.script(nn.GRUCell(4, 6))
        self.input_size, self.hidden_size = 4, 6

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(x, h)


@pytest.mark.parametrize("retain_graph", [False, True])
def test_scripted_cell_inside_a_traced_model(retain_graph):
    from torch.nn.modules import module as module_mod

    model = ScriptedCellModel()
    global_hooks = len(module_mod._global_forward_hooks), len(module_mod._global_forward_pre_hooks)
    with trace(model) as t:
        # The model's own module is a container of the scripted cell, found by feedback.
        cell_windows(
            model, window=5, steps=15, detach_h=not retain_graph, retain_graph=retain_graph
        )
    assert measured(t) == ([5] * 3, [5, 10, 15] if retain_graph else [5] * 3)
    assert {s.module for s in t.steps} == {"cell"}
    assert (len(module_mod._global_forward_hooks), len(module_mod._global_forward_pre_hooks)) == (
        global_hooks
    )


def test_explicit_step_modules():
    cell = TinyCell(4, 6)
    with trace(cell, step_modules=[cell]) as t:
        cell_windows(cell, window=5, steps=15)
    assert measured(t) == ([5] * 3, [5] * 3)


def test_stacked_cells_count_each_time_step_once():
    cells = nn.ModuleList([nn.LSTMCell(4, 6), nn.LSTMCell(6, 6)])
    x = torch.randn(20, 2, 4)
    with trace(cells) as t:
        state = [(torch.zeros(2, 6), torch.zeros(2, 6)) for _ in cells]
        for start in range(0, 20, 5):
            state = [(h.detach(), c.detach()) for h, c in state]
            loss = torch.zeros(())
            for i in range(start, start + 5):
                inp = x[i]
                for layer, cell in enumerate(cells):
                    state[layer] = cell(inp, state[layer])
                    inp = state[layer][0]
                loss = loss + inp.sum()
            loss.backward()
    assert measured(t) == ([5] * 4, [5] * 4)


def test_k1_k2_chain():
    with trace(None) as t:
        k1k2_chain(k1=2, k2=5)
    strides, horizons = measured(t)
    assert horizons[:4] == [2, 4, 5, 5]
    assert set(horizons[2:]) == {5}
    assert set(strides) == {2}
    assert all(c.continuations == c.horizon - 1 for c in t.calls)
    t.assert_tbptt(k1=2, k2=5)
    assert not any("Stale .grad" in f for f in t.findings)


def test_k1_k2_chain_stale_grad_is_a_finding():
    with trace(None) as t:
        k1k2_chain(k1=2, k2=5, clear_stale=False)
    assert [c.horizon for c in t.calls][:4] == [2, 4, 5, 5]
    stale = [f for f in t.findings if "Stale .grad" in f]
    assert stale and "leaf.grad = None" in stale[0]


def test_full_bptt_fails_with_stride_and_horizon():
    cell = nn.RNNCell(4, 6)
    with trace(None) as t:
        cell_windows(cell, window=30, steps=30)
    assert measured(t) == ([30], [30])
    with pytest.raises(AssertionError) as info:
        t.assert_tbptt(k1=10, k2=10)
    assert "stride" in str(info.value) and "horizon" in str(info.value)


def test_no_steps_explains_step_modules():
    lin = nn.Linear(3, 1)
    with trace(None) as t:
        lin(torch.randn(2, 3)).sum().backward()
    with pytest.raises(AssertionError, match="step_modules"):
        t.assert_tbptt(k1=1, k2=1)
