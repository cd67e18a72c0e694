"""`assert_tbptt` on the windows real loops take beside the steady ones: sampling or evaluation
between windows, a short tail per epoch, a ramp-up per sequence. They pass; the same shapes in
every window, or a cut inside a window, still fail."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import k1k2_chain  # noqa: E402

from tbptt_lint import trace  # noqa: E402


def measured(t) -> tuple[list[int], list[int]]:
    return [c.stride for c in t.calls], [c.horizon for c in t.calls]


def cell_loop(windows: list[tuple[int, int, int]], *, cut_at: dict[int, int] | None = None):
    """An RNNCell loop: per window (no-grad steps first, steps with gradients, fresh state?).
    `cut_at` maps a window to a step inside it where the state is (wrongly) detached."""
    torch.manual_seed(0)
    cell = nn.RNNCell(3, 5)
    h = torch.zeros(2, 5)
    with trace(None) as t:
        for w, (no_grad_steps, grad_steps, fresh) in enumerate(windows):
            h = torch.zeros(2, 5) if fresh else h.detach()
            with torch.no_grad():
                for _ in range(no_grad_steps):
                    h = cell(torch.randn(2, 3), h)
            loss = torch.zeros(())
            for i in range(grad_steps):
                if cut_at and cut_at.get(w) == i:
                    h = h.detach()
                h = cell(torch.randn(2, 3), h)
                loss = loss + h.pow(2).mean()
            loss.backward()
    return t


def test_sampling_without_gradients_between_windows_passes():
    # char-rnn samples a few steps every so often, under no_grad, with the same cell.
    t = cell_loop([(0, 5, False), (3, 5, False), (0, 5, False), (0, 5, False), (3, 5, False)])
    assert measured(t) == ([5, 8, 5, 5, 8], [5] * 5)
    t.assert_tbptt(k1=5, k2=5)


def test_a_no_grad_warm_up_in_every_window_is_that_schemes_stride():
    t = cell_loop([(3, 5, False)] * 4)
    assert measured(t) == ([8] * 4, [5] * 4)
    with pytest.raises(AssertionError, match="assert k1=8 for that scheme"):
        t.assert_tbptt(k1=5, k2=5)
    t.assert_tbptt(k1=8, k2=5)


def test_steps_with_gradients_between_windows_still_fail():
    # 8 steps with gradients in one window: its loss covers more than one window of k1.
    t = cell_loop([(0, 5, False), (0, 8, False), (0, 5, False), (0, 5, False)])
    with pytest.raises(AssertionError, match="came 8 steps after"):
        t.assert_tbptt(k1=5)


def test_a_short_tail_per_epoch_passes():
    # word_language_model: each epoch ends with a shorter window, then the state starts anew.
    lstm = nn.LSTM(4, 6)
    opt = torch.optim.SGD(lstm.parameters(), lr=0.01)
    data = torch.randn(12, 2, 4)
    with trace(lstm) as t:
        for _epoch in range(3):
            hidden = None
            for i in range(0, 12, 5):
                if hidden is not None:
                    hidden = tuple(s.detach() for s in hidden)
                out, hidden = lstm(data[i : i + 5], hidden)
                opt.zero_grad()
                out.sum().backward()
                opt.step()
    assert measured(t) == ([5, 5, 2] * 3, [5, 5, 2] * 3)
    t.assert_tbptt(k1=5, k2=5)


def test_short_windows_in_a_row_are_not_tails():
    t = cell_loop([(0, 5, False), (0, 2, False), (0, 2, False), (0, 5, False), (0, 5, False)])
    with pytest.raises(AssertionError, match="came 2 steps after"):
        t.assert_tbptt(k1=5, k2=5)


def test_a_cut_inside_one_window_fails_even_once():
    t = cell_loop([(0, 5, False)] * 4, cut_at={2: 3})
    assert measured(t)[1] == [5, 5, 3, 5]
    with pytest.raises(AssertionError, match="cut inside the window"):
        t.assert_tbptt(k1=5, k2=5)


def test_the_k1k2_recipe_ramps_up_again_for_every_sequence():
    with trace(None) as t:
        k1k2_chain(2, 4, steps=10, sequences=3)
    horizons = [c.horizon for c in t.calls]
    assert horizons == [2, 4, 4, 4, 4] * 3
    t.assert_tbptt(k1=2, k2=4)


def test_short_horizons_at_fresh_states_in_most_windows_are_the_horizon():
    # State made anew every 2 steps, inside windows of 5: the gradient never reaches 5 back.
    t = cell_loop([(0, 2, True)] * 4)
    with pytest.raises(AssertionError, match="expected k2=5"):
        t.assert_tbptt(k2=5)


def test_without_k1_and_k2_only_a_leak_fails():
    cell = nn.GRUCell(3, 5)
    lengths = [7, 9, 6, 8, 10, 7, 5]  # AWD-LSTM samples each window's length

    def run(cut: bool):
        torch.manual_seed(0)
        h = torch.zeros(2, 5)
        with trace(cell) as t:
            for length in lengths:
                if cut:
                    h = h.detach()
                loss = torch.zeros(())
                for _ in range(length):
                    h = cell(torch.randn(2, 3), h)
                    loss = loss + h.pow(2).mean()
                loss.backward(retain_graph=not cut)
        return t

    run(cut=True).assert_tbptt()
    leaking = run(cut=False)
    assert [c.horizon for c in leaking.calls][-1] == sum(lengths)
    with pytest.raises(AssertionError, match="carried state is never cut"):
        leaking.assert_tbptt()


def test_without_k1_and_k2_a_run_with_no_backward_fails():
    with trace(None) as t:
        pass
    with pytest.raises(AssertionError, match="no backward call was seen"):
        t.assert_tbptt()


def test_a_state_made_anew_is_told_apart_even_at_a_freed_states_address():
    # A state made anew may be allocated where the last sequence's state was, once that is
    # freed, and would then read as carried on (seen as a flaky ramp-up failure): the tracer
    # holds the storage of the state a step returned until the next call, so an address is
    # shared only by a real continuation.
    cell = nn.RNNCell(4, 6)
    x = torch.randn(2, 4)
    with trace(cell) as t:
        for _sequence in range(6):
            h = torch.zeros(2, 6)
            for _ in range(3):
                h = cell(x, h)
            h.sum().backward()
            (info,) = (i for i in t._tracker.modules.values() if i.counted)
            address = h.untyped_storage().data_ptr()
            del h
            held = [t.untyped_storage().data_ptr() for t in info.state_out]
            assert held == [address]  # the state last returned, held until the next call
    assert t._tracker.fresh_starts() == {0, 3, 6, 9, 12, 15}
    assert not info.state_out  # let go of when the trace ends
