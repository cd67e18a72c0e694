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


def cell_loop(
    windows: list[tuple[int, int, int]],
    *,
    cut_at: dict[int, int] | None = None,
    reset_at: dict[int, int] | None = None,
    sample: bool = False,
    last_loss: bool = False,
):
    """An RNNCell loop: per window (no-grad steps first, steps with gradients, fresh state?).
    The no-grad steps carry the training state on (a warm-up), or with `sample` run on a copy
    of it (sampling text, as char-rnn does). `cut_at` and `reset_at` map a window to a step
    inside it where the state is detached, or made anew (zeros). The loss sums every step,
    or with `last_loss` takes the window's last output only."""
    torch.manual_seed(0)
    cell = nn.RNNCell(3, 5)
    h = torch.zeros(2, 5)
    with trace(None) as t:
        for w, (no_grad_steps, grad_steps, fresh) in enumerate(windows):
            h = torch.zeros(2, 5) if fresh else h.detach()
            with torch.no_grad():
                g = h
                for _ in range(no_grad_steps):
                    g = cell(torch.randn(2, 3), g)
                if not sample:
                    h = g
            loss = torch.zeros(())
            for i in range(grad_steps):
                if cut_at and cut_at.get(w) == i:
                    h = h.detach()
                if reset_at and reset_at.get(w) == i:
                    h = torch.zeros(2, 5)
                h = cell(torch.randn(2, 3), h)
                loss = h.pow(2).mean() if last_loss else loss + h.pow(2).mean()
            loss.backward()
    return t


SOMETIMES_NO_GRAD = [(0, 5, False), (3, 5, False), (0, 5, False), (0, 5, False), (3, 5, False)]


def test_sampling_without_gradients_between_windows_passes():
    # char-rnn samples a few steps every so often, under no_grad, from a copy of the state.
    t = cell_loop(SOMETIMES_NO_GRAD, sample=True)
    assert measured(t) == ([5, 8, 5, 5, 8], [5] * 5)
    t.assert_tbptt(k1=5, k2=5)


def test_steps_without_gradients_that_carry_the_training_state_on_fail():
    # The same steps on the training state itself: the data they consume is never learned from.
    t = cell_loop(SOMETIMES_NO_GRAD)
    assert measured(t) == ([5, 8, 5, 5, 8], [5] * 5)
    with pytest.raises(AssertionError, match="carry the training state on, skipping data"):
        t.assert_tbptt(k1=5, k2=5)


def test_evaluation_on_a_state_of_its_own_before_an_epochs_tail_passes():
    # An evaluation (own, new state, no gradients) every so often; each epoch of 13 steps ends
    # with a 3-step tail, and the next epoch starts from a new state.
    cell = nn.GRUCell(3, 5)
    with trace(cell) as t:
        for epoch in range(3):
            h = torch.zeros(2, 5)
            for start in range(0, 13, 5):
                h = h.detach()
                if epoch and start == 10:
                    with torch.no_grad():
                        e = torch.zeros(2, 5)
                        for _ in range(4):
                            e = cell(torch.randn(2, 3), e)
                loss = torch.zeros(())
                for _ in range(min(5, 13 - start)):
                    h = cell(torch.randn(2, 3), h)
                    loss = loss + h.pow(2).mean()
                loss.backward()
    assert measured(t) == ([5, 5, 3, 5, 5, 7, 5, 5, 7], [5, 5, 3] * 3)
    t.assert_tbptt(k1=5, k2=5)


def test_a_no_grad_warm_up_in_every_window_is_that_schemes_stride():
    t = cell_loop([(3, 5, False)] * 4)
    assert measured(t) == ([8] * 4, [5] * 4)
    with pytest.raises(AssertionError, match="stride counts both, so assert k1=8 for it"):
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


def test_a_rollout_without_gradients_before_every_window_is_not_in_the_stride():
    # PPO with an LSTM policy: each window's steps are first run without gradients to collect
    # a rollout, then again with gradients from the rollout's starting state.
    cell = nn.GRUCell(3, 5)
    with trace(cell) as t:
        start = torch.zeros(2, 5)
        for _ in range(4):
            xs = torch.randn(5, 2, 3)
            with torch.no_grad():
                h = start
                for x in xs:
                    h = cell(x, h)
            loss, g = torch.zeros(()), start
            for x in xs:
                g = cell(x, g)
                loss = loss + g.pow(2).mean()
            loss.backward()
            start = h
    assert measured(t) == ([10] * 4, [5] * 4)
    t.assert_tbptt(k1=5, k2=5)


def test_short_windows_of_a_carried_state_are_not_tails():
    # Chunks of 7 steps walked in windows of 5, state carried across chunks: 5, 2, 5, 2, ...
    # is not TBPTT(5, 5), though each short window is followed by a full one.
    lstm = nn.LSTM(3, 5)
    with trace(lstm) as t:
        hidden = None
        for _chunk in range(3):
            data = torch.randn(7, 2, 3)
            for i in range(0, 7, 5):
                if hidden is not None:
                    hidden = tuple(s.detach() for s in hidden)
                out, hidden = lstm(data[i : i + 5], hidden)
                out.sum().backward()
    assert measured(t) == ([5, 2] * 3, [5, 2] * 3)
    with pytest.raises(AssertionError, match="came 2 steps after"):
        t.assert_tbptt(k1=5, k2=5)


def test_a_state_made_anew_inside_a_window_is_no_ramp():
    # Reset on the wrong condition, in every other window, with the loss on the last output:
    # the gradient reaches only the steps after the reset.
    t = cell_loop([(0, 5, False)] * 6, reset_at={1: 2, 3: 2, 5: 2}, last_loss=True)
    assert measured(t) == ([5] * 6, [5, 3] * 3)
    with pytest.raises(AssertionError, match="expected k2=5"):
        t.assert_tbptt(k1=5, k2=5)


def chunked_cells(
    *, chunk: int, carry, layers: int = 1, reset_layer: int | None = None, sequence_start=None
):
    """Stacked RNNCells walked in windows of 5 over chunks of `chunk` steps; `carry(h, i)` is
    the state layer i starts a window from; layer `reset_layer` starts every window anew; with
    `sequence_start()`, every chunk is a sequence that starts from that state."""
    torch.manual_seed(0)
    cells = nn.ModuleList(nn.RNNCell(3 if i == 0 else 4, 4) for i in range(layers))

    def window_state(i: int, h: torch.Tensor, start: int) -> torch.Tensor:
        if i == reset_layer:
            return torch.zeros(2, 4)
        if sequence_start is not None and start == 0:
            return sequence_start()
        return carry(h, i)

    with trace(cells) as t:
        hs = [torch.zeros(2, 4) for _ in cells]
        for _chunk in range(3):
            for start in range(0, chunk, 5):
                hs = [window_state(i, h, start) for i, h in enumerate(hs)]
                loss = torch.zeros(())
                for _ in range(min(5, chunk - start)):
                    x = torch.randn(2, 3)
                    for i, cell in enumerate(cells):
                        hs[i] = x = cell(x, hs[i])
                    loss = loss + x.pow(2).mean()
                loss.backward()
    return t


@pytest.mark.parametrize(
    "carry",
    [lambda h, i: h.detach().clone(), lambda h, i: torch.stack([h.detach()])[0]],
    ids=["clone", "stack"],
)
def test_a_copied_state_is_still_carried_on(carry):
    # Chunks of 7 in windows of 5, the state carried through a copy: 5, 2, 5, 2 fails.
    t = chunked_cells(chunk=7, carry=carry)
    assert measured(t) == ([5, 2] * 3, [5, 2] * 3)
    with pytest.raises(AssertionError, match="came 2 steps after"):
        t.assert_tbptt(k1=5, k2=5)


def test_one_stacked_layer_made_anew_does_not_start_a_sequence():
    t = chunked_cells(chunk=7, carry=lambda h, i: h.detach(), layers=2, reset_layer=1)
    with pytest.raises(AssertionError, match="came 2 steps after"):
        t.assert_tbptt(k1=5, k2=5)


def test_sequences_from_a_learned_initial_state_end_in_tails():
    h0 = nn.Parameter(torch.zeros(1, 4))
    # Each sequence starts from the learned state, in a graph.
    t = chunked_cells(
        chunk=7, carry=lambda h, i: h.detach(), sequence_start=lambda: h0.expand(2, 4)
    )
    assert measured(t) == ([5, 2] * 3, [5, 2] * 3)
    t.assert_tbptt(k1=5, k2=5)
    t.assert_tbptt(k2=5)  # without k1, a tail is a window shorter than k2


def test_an_episode_that_ends_inside_a_window_passes():
    # RL: the state is made anew where an episode ends, once in a while mid-window, with a
    # loss at every step. The horizon is the longest stretch between the resets.
    t = cell_loop([(0, 5, False)] * 6, reset_at={2: 2, 4: 2})
    assert measured(t) == ([5] * 6, [5, 5, 3, 5, 3, 5])
    t.assert_tbptt(k1=5, k2=5)  # a detach there instead fails: see the cut test above
