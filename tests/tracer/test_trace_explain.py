"""Errors raised inside `trace` get a plain-words explanation; findings are worded for people."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import cell_windows, k1k2_chain  # noqa: E402

from tbptt_lint import trace  # noqa: E402


def test_second_time_error_names_the_leaking_state_and_the_fix():
    cell = nn.LSTMCell(4, 6)
    with pytest.raises(RuntimeError) as info, trace(cell):
        cell_windows(cell, lstm=True, detach_c=False, steps=20)
    message = str(info.value)
    assert message.startswith("Trying to backward through the graph a second time")
    assert type(info.value) is RuntimeError
    assert "[tbptt-lint]" in message
    assert "`c`" in message and "backward #0" in message
    assert "steps 0..9" in message
    assert "c.detach()" in message
    assert message.count("[tbptt-lint]") == 1


@pytest.mark.parametrize("kind", ["LSTM", "RNNCell"])
def test_second_time_error_names_the_whole_freed_window(kind):
    # Windows of 5 steps, never cut: the second backward reaches steps 0..4, all of them in
    # the window the first backward freed (not only a sequence call's first step, and not a
    # step of its own window).
    model = nn.LSTM(4, 8) if kind == "LSTM" else nn.RNNCell(4, 8)
    state = None if kind == "LSTM" else torch.zeros(2, 8)
    with pytest.raises(RuntimeError) as info, trace(None):
        for _ in range(2):
            if kind == "LSTM":
                out, state = model(torch.randn(5, 2, 4), state)
                loss = out.sum()
            else:
                loss = torch.zeros(())
                for _ in range(5):
                    state = model(torch.randn(2, 4), state)
                    loss = loss + state.sum()
            loss.backward()
    assert "flows into steps 0..4 (the window of backward #0)" in str(info.value)


def test_k1k2_recipe_without_retain_graph_is_told_to_keep_the_graph():
    # Overlapping windows (k1 < k2) backpropagate each step's graph several times: the state
    # is cut on purpose, so the advice is retain_graph=True, not a detach.
    with pytest.raises(RuntimeError) as info, trace(None):
        k1k2_chain(2, 5, steps=10, retain_graph=False)
    message = str(info.value)
    assert "k1/k2 recipe" in message and "retain_graph=True" in message
    assert "Carried state was not cut" not in message and "only hides" not in message


def test_inplace_error_is_explained():
    cell = nn.RNNCell(4, 6)
    x = torch.randn(10, 2, 4)
    with pytest.raises(RuntimeError) as info, trace(None):
        h = torch.zeros(2, 6)
        loss = torch.zeros(())
        for t in range(5):
            h = cell(x[t], h)
            loss = loss + h.sum()
        h.mul_(0.5)  # the state a graph saved is changed in place
        loss.backward()
    message = str(info.value)
    assert "modified by an inplace operation" in message
    assert "[tbptt-lint]" in message and "h = h.detach()" in message
    assert "saved by step 4" in message


def test_unrelated_errors_are_untouched():
    with pytest.raises(RuntimeError) as info, trace(None):
        torch.zeros(2).backward()  # no grad_fn at all
    assert "[tbptt-lint]" not in str(info.value)


def test_growth_message_reads_plainly():
    with trace(None) as t:
        cell_windows(nn.GRUCell(4, 6), detach_h=False, retain_graph=True, steps=40)
    with pytest.raises(AssertionError) as info:
        t.assert_tbptt(k1=10, k2=10)
    message = str(info.value)
    assert "the horizon grows by 10 every window: carried state is never cut" in message
    assert "measured horizons 10, 20, 30, 40" in message
    assert t.verdict is not None and t.verdict.startswith("failed")


def test_report_and_dict_delegate_to_the_renderers(tmp_path):
    pytest.importorskip("tbptt_lint.tracer.report")
    with trace(None) as t:
        cell_windows(nn.RNNCell(4, 6), steps=20, window=5)
    t.assert_tbptt(k1=5, k2=5)
    assert "5" in t.report()
    data = t.to_dict()
    assert isinstance(data, dict)
    summary = t.summary()
    assert summary.verdict == "ok" and len(summary.steps) == 20
    call = summary.calls[-1]
    assert call.reached_steps == tuple(range(15, 20))
    assert call.state_links == tuple((s, s + 1) for s in range(15, 19))
    assert call.snapshot is not None and call.snapshot.nodes
    assert call.snapshot.dot_source is None or "digraph" in call.snapshot.dot_source
    out = t.save_graph(tmp_path / "g.dot")
    assert out.read_text().startswith(("digraph", "strict digraph"))


def test_gradients_of_torch_func_are_not_windows_and_the_report_says_why():
    from torch.func import functional_call, grad

    torch.manual_seed(0)
    cell = nn.GRUCell(3, 5)
    params = {k: v.detach() for k, v in cell.named_parameters()}

    def window_loss(p, xs, h):  # type: ignore[no-untyped-def]
        loss = torch.zeros(())
        for x in xs:
            h = functional_call(cell, p, (x, h))
            loss = loss + h.pow(2).mean()
        return loss, h

    with trace(None) as t:
        h = torch.zeros(2, 5)
        for _ in range(3):
            g, h = grad(window_loss, has_aux=True)(params, torch.randn(4, 2, 3), h)
            params = {k: v - 0.1 * g[k] for k, v in params.items()}
    assert t.calls == [] and t.graph_gradients == 3
    assert any("3 gradient(s) were taken with create_graph=True" in f for f in t.findings)
    with pytest.raises(AssertionError, match="torch.func.grad"):
        t.assert_tbptt(k1=4, k2=4)


def test_leaks_past_the_first_three_are_counted_not_dropped():
    from tbptt_lint.tracer.explain import describe_leaks
    from tbptt_lint.tracer.steps import StateLeak

    leaks = [StateLeak(f"rnns.{layer}", part, 10, 9, 0) for layer in range(3) for part in "hc"]
    text = describe_leaks(leaks, [])
    assert text.count("passed to") == 3
    assert "3 more states leak the same way." in text
    assert "more state" not in describe_leaks(leaks[:3], [])
    assert "1 more state leaks the same way." in describe_leaks(leaks[:4], [])


def test_leaks_are_named_as_the_calling_code_names_the_state():
    # `hidden` is the tuple passed to the LSTM: named with its parts, once.
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4, num_layers=2)
    x = torch.randn(15, 2, 3)
    with trace(None) as t:
        hidden = None
        for start in range(0, 15, 5):
            out, hidden = rnn(x[start : start + 5], hidden)
            out.sum().backward(retain_graph=True)
    findings = " ".join(t.findings)
    assert "`hidden` (its parts `h`, `c`) passed to 'LSTM' at step 5" in findings
    assert "(and 1 more time)" in findings
    assert "`h` passed" not in findings
    # A hand-written cell's state is `h` in the loop, not "input 1".
    from _trace_loops import TinyCell

    with trace(None) as t:
        cell_windows(TinyCell(3, 4), window=5, steps=15, detach_h=False, retain_graph=True)
    findings = " ".join(t.findings)
    assert "`h` passed to 'TinyCell' at step 5" in findings and "input 1" not in findings


def test_a_backward_run_after_the_next_windows_first_step_reports_no_leak():
    # The window's loss is backpropagated only after the next window has started from the
    # cut state: that step counts toward the earlier window but its graph is not reached.
    cell = nn.RNNCell(3, 5)
    with trace(cell) as t:
        h = torch.zeros(2, 5)
        loss = None
        for _window in range(4):
            h = h.detach()
            for i in range(5):
                h = cell(torch.randn(2, 3), h)
                if i == 0 and loss is not None:
                    loss.backward()
                loss = h.pow(2).mean() if i == 0 else loss + h.pow(2).mean()
        loss.backward()
    assert [c.horizon for c in t.calls] == [5] * 4
    assert not any("passed to" in f for f in t.findings)
    assert t._tracker.leaks  # recorded in the forward hook, then found unreached
