"""`BackwardCall.cut_steps`: the reached steps where the gradient stops (no carried state from
an earlier reached step flowed into them), for the loops TBPTT code is written with."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import TinyCell, cell_windows, k1k2_chain, sequence_windows  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer.report import from_dict  # noqa: E402


def cuts(t) -> list[list[int]]:
    return [list(c.cut_steps) for c in t.calls]


def window_starts(t) -> list[list[int]]:
    return [[c.step - c.stride] for c in t.calls]


SEQUENCE_CASES = [
    pytest.param(cls, layers, batch_first, id=f"{cls.__name__}-{layers}-bf{int(batch_first)}")
    for cls in (nn.RNN, nn.LSTM, nn.GRU)
    for layers in (1, 2)
    for batch_first in (False, True)
]


@pytest.mark.parametrize(("rnn_cls", "layers", "batch_first"), SEQUENCE_CASES)
def test_sequence_module_windows_are_cut_at_their_start_only(rnn_cls, layers, batch_first):
    # The steps inside one call are linked through the module's own recurrence.
    rnn = rnn_cls(4, 6, num_layers=layers, batch_first=batch_first)
    with trace(rnn) as t:
        sequence_windows(rnn, window=5, steps=20)
    assert cuts(t) == [[0], [5], [10], [15]]
    assert [c["cut_steps"] for c in t.to_dict()["calls"]] == cuts(t)


@pytest.mark.parametrize(("rnn_cls", "layers", "batch_first"), SEQUENCE_CASES)
def test_sequence_module_never_cut_stops_only_at_step_0(rnn_cls, layers, batch_first):
    rnn = rnn_cls(4, 6, num_layers=layers, batch_first=batch_first)
    with trace(rnn) as t:
        sequence_windows(rnn, window=5, steps=20, leak=True)
    assert [c.horizon for c in t.calls] == [5, 10, 15, 20]
    assert cuts(t) == [[0]] * 4


@pytest.mark.parametrize("rnn_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_sequence_module_fed_one_step_at_a_time_and_cut_every_step(rnn_cls):
    rnn = rnn_cls(4, 6, num_layers=2)
    x = torch.randn(12, 2, 4)
    with trace(rnn) as t:
        hx = None
        for start in range(0, 12, 4):
            loss = torch.zeros(())
            for s in range(start, start + 4):
                if hx is not None:
                    hx = tuple(p.detach() for p in hx) if isinstance(hx, tuple) else hx.detach()
                out, hx = rnn(x[s : s + 1], hx)
                loss = loss + out.pow(2).mean()
            loss.backward()
    assert cuts(t) == [list(range(s, s + 4)) for s in (0, 4, 8)]


def test_word_language_model_loop():
    # Embedding, 2-layer nn.LSTM, decoder, `repackage_hidden` between windows of 5.
    torch.manual_seed(0)
    emb, rnn, dec = nn.Embedding(20, 8), nn.LSTM(8, 6, num_layers=2), nn.Linear(6, 20)
    data = torch.randint(0, 20, (31, 2))
    with trace(None) as t:
        hidden = None
        for i in range(0, 30, 5):
            inp, target = data[i : i + 5], data[i + 1 : i + 6]
            if hidden is not None:
                hidden = tuple(h.detach() for h in hidden)
            out, hidden = rnn(emb(inp), hidden)
            nn.functional.cross_entropy(dec(out).flatten(0, 1), target.flatten()).backward()
    assert cuts(t) == window_starts(t) == [[0], [5], [10], [15], [20], [25]]


@pytest.mark.parametrize(
    ("cell_cls", "lstm"), [(nn.RNNCell, False), (nn.GRUCell, False), (nn.LSTMCell, True)]
)
def test_cells(cell_cls, lstm):
    with trace(None) as t:
        cell_windows(cell_cls(4, 6), lstm=lstm, steps=20, window=5)
    assert cuts(t) == [[0], [5], [10], [15]]
    with trace(None) as t:
        cell_windows(cell_cls(4, 6), lstm=lstm, steps=20, window=5, detach_every_step=True)
    assert cuts(t) == [list(range(s, s + 5)) for s in (0, 5, 10, 15)]
    with trace(None) as t:
        cell_windows(
            cell_cls(4, 6),
            lstm=lstm,
            steps=20,
            window=5,
            detach_h=False,
            detach_c=False,
            retain_graph=True,
        )
    assert cuts(t) == [[0]] * 4


def test_lstm_cell_with_only_c_carried_is_not_cut():
    # h is cut at each window, c is not: state still flows in through c.
    with trace(None) as t:
        cell_windows(nn.LSTMCell(4, 6), lstm=True, detach_c=False, retain_graph=True, steps=20)
    assert cuts(t) == [[0], [0]]


def test_hand_written_cell():
    with trace(None) as t:
        cell_windows(TinyCell(4, 6), window=6, steps=24)
    assert cuts(t) == [[0], [6], [12], [18]]
    with trace(None) as t:
        cell_windows(TinyCell(4, 6), window=6, steps=12, detach_every_step=True)
    assert cuts(t) == [list(range(6)), list(range(6, 12))]


def test_stacked_cells_cut_at_the_window_start():
    cells = nn.ModuleList([nn.LSTMCell(4, 6), nn.LSTMCell(6, 6)])
    x = torch.randn(15, 2, 4)
    with trace(cells) as t:
        state = [(torch.zeros(2, 6), torch.zeros(2, 6)) for _ in cells]
        for start in range(0, 15, 5):
            state = [(h.detach(), c.detach()) for h, c in state]
            loss = torch.zeros(())
            for i in range(start, start + 5):
                inp = x[i]
                for layer, cell in enumerate(cells):
                    state[layer] = cell(inp, state[layer])
                    inp = state[layer][0]
                loss = loss + inp.sum()
            loss.backward()
    assert cuts(t) == [[0], [5], [10]]


def test_k1_k2_chain_is_cut_at_the_first_step_it_reaches():
    # Each chained `state.backward(leaf.grad)` reaches one step; the chain links them.
    with trace(None) as t:
        k1k2_chain(k1=2, k2=5, steps=12)
    for call in t.calls:
        reached = call.reached_steps
        assert reached == tuple(range(reached[0], reached[-1] + 1))
        assert call.cut_steps == (reached[0],)
    assert [c.cut_steps[0] for c in t.calls] == [0, 0, 1, 3, 5, 7]


def test_cut_steps_survive_the_json_round_trip_and_old_records_derive_them():
    with trace(None) as t:
        sequence_windows(nn.LSTM(4, 6), window=5, steps=10)
    data = t.to_dict()
    assert [c.cut_steps for c in from_dict(data).calls] == [(0,), (5,)]
    for call in data["calls"]:  # a record written before cut_steps: from the links alone
        del call["cut_steps"]
    assert [c.cut_steps for c in from_dict(data).calls] == [tuple(range(5)), tuple(range(5, 10))]
