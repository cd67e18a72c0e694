"""The tracer must not change results, must clean up after itself, and must count each
backward once however it is reached."""

from __future__ import annotations

import gc
import threading

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from _trace_loops import TinyCell, cell_windows  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import graph_walk, patching  # noqa: E402
from tbptt_lint.tracer.patching import BackwardInterceptor  # noqa: E402


def _train(traced: bool) -> tuple[list, list]:
    torch.manual_seed(0)
    model = nn.ModuleDict({"cell": nn.LSTMCell(4, 6), "head": nn.Linear(6, 1)})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(30, 3, 4)
    grads: list[torch.Tensor] = []

    def run() -> None:
        h = c = torch.zeros(3, 6)
        for start in range(0, 30, 10):
            h, c = h.detach(), c.detach()
            opt.zero_grad()
            loss = torch.zeros(())
            for t in range(start, start + 10):
                h, c = model["cell"](x[t], (h, c))
                loss = loss + model["head"](h).pow(2).mean()
            loss.backward()
            grads.extend(p.grad.clone() for p in model.parameters())
            opt.step()

    if traced:
        with trace(None) as t:
            run()
        assert [c.horizon for c in t.calls] == [10, 10, 10]
    else:
        run()
    return [p.detach().clone() for p in model.parameters()], grads


def test_bit_identical_params_and_grads():
    plain_params, plain_grads = _train(traced=False)
    traced_params, traced_grads = _train(traced=True)
    assert all(torch.equal(a, b) for a, b in zip(plain_params, traced_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(plain_grads, traced_grads, strict=True))


def _hook_state(module: nn.Module) -> tuple:
    from torch.nn.modules import module as module_mod
    from torch.optim import optimizer as optim_mod

    return (
        len(module_mod._global_forward_hooks),
        len(module_mod._global_forward_pre_hooks),
        len(optim_mod._global_optimizer_post_hooks),
        len(optim_mod._global_optimizer_pre_hooks),
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules()),
    )


def _engine_functions() -> tuple:
    from torch.autograd.variable import Variable

    return (
        getattr(torch.autograd.graph, "_engine_run_backward", None),  # torch 2.3+
        getattr(torch.autograd, "_engine_run_backward", None),
        Variable._execution_engine,
        torch.Tensor.backward,
        torch.autograd.backward,
        torch.autograd.grad,
    )


@pytest.mark.parametrize("model_given", [False, True])
def test_everything_removed_after_exception(model_given):
    cell = nn.GRUCell(4, 6)
    before_hooks, before_fns = _hook_state(cell), _engine_functions()
    gc_enabled = gc.isenabled()
    with pytest.raises(ValueError, match="boom"), trace(cell if model_given else None):
        cell_windows(cell, steps=10, window=5)
        raise ValueError("boom")
    assert _hook_state(cell) == before_hooks
    assert _engine_functions() == before_fns
    assert gc.isenabled() == gc_enabled


def test_everything_removed_after_error_inside_backward():
    cell = nn.LSTMCell(4, 6)
    before_hooks, before_fns = _hook_state(cell), _engine_functions()
    with pytest.raises(RuntimeError), trace(cell):
        cell_windows(cell, lstm=True, detach_c=False, steps=20)
    assert _hook_state(cell) == before_hooks
    assert _engine_functions() == before_fns


def test_backward_imported_before_tracing_is_seen():
    from torch.autograd import backward as early_backward
    from torch.autograd import grad as early_grad

    cell = nn.RNNCell(4, 6)
    with trace(None) as t:
        h = torch.zeros(2, 6)
        for _ in range(3):
            h = cell(torch.randn(2, 4), h)
        early_backward([h.sum()], retain_graph=True)
        for _ in range(3):
            h = cell(torch.randn(2, 4), h)
        early_grad(h.sum(), list(cell.parameters()))
    assert [(c.kind, c.stride, c.horizon) for c in t.calls] == [("backward", 3, 3), ("grad", 3, 6)]


def test_set_default_device_reentry_counted_once():
    torch.set_default_device("cpu")  # installs a TorchFunctionMode: Tensor.backward re-enters
    try:
        with trace(None) as t:
            cell_windows(nn.GRUCell(4, 6), steps=20, window=5)
    finally:
        torch.set_default_device(None)  # removes the mode (setting "cpu" back would keep it)
    assert [(c.stride, c.horizon) for c in t.calls] == [(5, 5)] * 4


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointing_counted_once(reentrant):
    from torch.utils.checkpoint import checkpoint

    emb = nn.Linear(4, 4)
    cell = nn.GRUCell(4, 6)
    x = torch.randn(20, 2, 4)

    def window(h: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        for i in range(xs.shape[0]):
            h = cell(xs[i], h)
        return h

    with trace(None) as t:
        h = torch.zeros(2, 6)
        for start in range(0, 20, 5):
            h = checkpoint(window, h.detach(), emb(x[start : start + 5]), use_reentrant=reentrant)
            h.pow(2).mean().backward()
    calls = t.calls
    assert [c.stride for c in calls] == [5] * 4  # recomputation during backward is not a step
    if reentrant:
        assert all("CheckpointFunctionBackward" in c.opaque for c in calls)
        with pytest.raises(AssertionError, match="cannot see into"):
            t.assert_tbptt(k1=5, k2=5)
    else:
        assert [c.horizon for c in calls] == [5] * 4
        assert not any(c.opaque for c in calls)


class CountingCell(nn.GRUCell):
    """Counts its forward calls: a checkpoint's unpack hook recomputes them."""

    calls = 0

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        CountingCell.calls += 1
        return super().forward(x, h)


def checkpointed_windows() -> list:
    """Four windows of 5 steps, each run inside non-reentrant checkpointing."""
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    cell = CountingCell(4, 6)
    x = torch.randn(20, 2, 4)

    def window(h: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        for i in range(xs.shape[0]):
            h = cell(xs[i], h)
        return h

    h = torch.zeros(2, 6)
    for start in range(0, 20, 5):
        h = checkpoint(window, h.detach(), x[start : start + 5], use_reentrant=False)
        h.pow(2).mean().backward()
    return [p.grad.clone() for p in cell.parameters()]


@pytest.mark.parametrize("torch_reports_hooks", [True, False])
def test_saved_tensors_behind_hooks_are_not_read(monkeypatch, torch_reports_hooks):
    # Reading a checkpointed tensor runs its unpack hook, which recomputes the forward: the
    # walk must leave such tensors alone. Without `_top_saved_tensors_default_hooks` (torch
    # < 2.3) the trace counts `saved_tensors_hooks` contexts itself.
    if not torch_reports_hooks:
        monkeypatch.delattr(torch._C._autograd, "_top_saved_tensors_default_hooks", raising=False)
    for cache in ("_saved_attrs_cache", "_tensor_attrs_cache", "_type_kinds", "_name_kinds"):
        monkeypatch.setattr(graph_walk, cache, {})  # cold: what a class holds is probed anew
    hooks_cls = torch.autograd.graph.saved_tensors_hooks
    methods = (hooks_cls.__enter__, hooks_cls.__exit__)
    CountingCell.calls = 0
    untraced = checkpointed_windows()
    untraced_calls = CountingCell.calls
    CountingCell.calls = 0
    with trace(None) as t:
        traced = checkpointed_windows()
    assert CountingCell.calls == untraced_calls == 40  # 20 steps, each recomputed once
    assert all(torch.equal(a, b) for a, b in zip(untraced, traced, strict=True))
    assert [c.horizon for c in t.calls] == [5] * 4
    assert all(c.saved_bytes == 0 for c in t.calls)
    assert all(any("packed by hooks" in note for note in c.notes) for c in t.calls)
    assert (hooks_cls.__enter__, hooks_cls.__exit__) == methods


def test_lbfgs_closure_counted_once_per_step():
    torch.manual_seed(0)
    cell = nn.GRUCell(4, 6)
    opt = torch.optim.LBFGS(cell.parameters(), max_iter=4)
    x = torch.randn(30, 2, 4)
    with trace(None) as t:
        h = torch.zeros(2, 6)
        for start in range(0, 30, 10):
            h0 = h.detach()

            def closure(h0=h0, start=start):
                opt.zero_grad()
                hh = h0
                for i in range(start, start + 10):
                    hh = cell(x[i], hh)
                loss = hh.pow(2).mean()
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                for i in range(start, start + 10):
                    h = cell(x[i], h)
    # Each window: 10 closure steps once (re-evaluations folded), plus 10 no-grad steps.
    assert [(c.stride, c.horizon) for c in t.calls] == [(10, 10), (20, 10), (20, 10)]
    assert t.optimizer_steps == 3


# On torch 2.6.0 (CI's Python 3.12 leg) this test once ended the whole run with a segmentation
# fault: one thread reading `AccumulateGrad.variable` in graph_walk._snapshot while another
# ran torchviz over its own graph and a third built an RNNCell. Not seen on torch 2.1.2 or
# 2.13; left open in the issue notes until the cause is found.
@pytest.mark.skipif(
    torch.__version__.startswith("2.6."),
    reason="a segmentation fault seen once on torch 2.6.0 with three tracing threads",
)
def test_threads_keep_their_own_strides():
    def worker() -> None:
        cell_windows(nn.RNNCell(4, 6), steps=20, window=5)

    with trace(None) as t:
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert len(t.calls) == 12
    assert {(c.stride, c.horizon) for c in t.calls} == {(5, 5)}
    assert not t.internal_errors


def test_threads_and_modules_that_come_and_go_keep_their_own_strides():
    # One thread after another, each with a new cell that dies with it: CPython gives the
    # next thread the same ident, and the next cell often the same id().
    def worker() -> None:
        cell_windows(nn.RNNCell(4, 6), steps=20, window=5)

    with trace(None) as t:
        for _ in range(4):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
    assert [(c.stride, c.horizon) for c in t.calls] == [(5, 5)] * 16
    assert not t.internal_errors


def test_a_backward_in_a_new_thread_each_window_keeps_the_stride():
    cell = nn.GRUCell(4, 6)
    x = torch.randn(20, 3, 4)
    with trace(cell) as t:
        h = torch.zeros(3, 6)
        for start in range(0, 20, 5):
            h = h.detach()
            loss = torch.zeros(())
            for i in range(start, start + 5):
                h = cell(x[i], h)
                loss = loss + h.pow(2).mean()
            thread = threading.Thread(target=loss.backward)
            thread.start()
            thread.join()
    assert [(c.step, c.stride, c.horizon) for c in t.calls] == [
        (5, 5, 5),
        (10, 5, 5),
        (15, 5, 5),
        (20, 5, 5),
    ]
    t.assert_tbptt(k1=5, k2=5)


def test_threads_taking_turns_on_one_model_keep_the_stride():
    cell = nn.RNNCell(4, 6)
    turns = [threading.Event() for _ in range(8)]

    def worker(first: int) -> None:
        x = torch.randn(5, 3, 4)
        h = torch.zeros(3, 6)
        for turn in range(first, 8, 2):
            turns[turn].wait()
            h = h.detach()
            loss = torch.zeros(())
            for i in range(5):
                h = cell(x[i], h)
                loss = loss + h.pow(2).mean()
            loss.backward()
            if turn + 1 < 8:
                turns[turn + 1].set()

    with trace(None) as t:
        threads = [threading.Thread(target=worker, args=(first,)) for first in (0, 1)]
        for th in threads:
            th.start()
        turns[0].set()
        for th in threads:
            th.join()
    assert [c.step for c in t.calls] == list(range(5, 45, 5))
    assert {(c.stride, c.horizon) for c in t.calls} == {(5, 5)}


def test_nested_traces_restore_in_order():
    before = _engine_functions()
    cell = TinyCell(4, 6)
    with trace(None) as outer:
        with trace(None) as inner:
            cell_windows(cell, steps=10, window=5)
        cell_windows(cell, steps=10, window=5)
    assert _engine_functions() == before
    assert len(inner.calls) == 2 and len(outer.calls) == 4


def _intercepted_calls(interceptor_mode: str) -> list[int]:
    from torch.autograd import backward as early_backward

    seen: list[int] = []

    def handler(outputs, grads, info, run):
        seen.append(1)
        return run()

    interceptor = BackwardInterceptor(handler)
    interceptor.install()
    try:
        assert interceptor.mode == interceptor_mode
        a = torch.randn(3, requires_grad=True)
        (a * 2).sum().backward()
        torch.autograd.grad((a * 3).sum(), a)
        early_backward([(a * 4).sum()])
    finally:
        interceptor.uninstall()
    return seen


def test_engine_object_fallback_counts_once(monkeypatch):
    # Without the private engine function (torch < 2.3), the engine object is proxied: that
    # sees a `backward` imported before tracing too.
    monkeypatch.delattr(torch.autograd.graph, "_engine_run_backward", raising=False)
    before = _engine_functions()
    assert _intercepted_calls("engine-object") == [1, 1, 1]
    assert _engine_functions() == before


def test_public_fallback_counts_once(monkeypatch):
    # Without either, the public entry points are wrapped (what was imported before is missed).
    monkeypatch.delattr(torch.autograd.graph, "_engine_run_backward", raising=False)
    monkeypatch.setattr(patching, "_engine_owner", lambda: None)
    before = _engine_functions()
    assert _intercepted_calls("public") == [1, 1]
    assert _engine_functions() == before
