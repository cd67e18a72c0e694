"""Code run under torch.compile: the tracer's hooks must leave compiled graphs alone.

torch.compile traces module hooks into its graph. A hook that touches tracer state there
breaks compilation (dynamo raised an AssertionError on `trace(None)` around a compiled
GRUCell) or forces a graph break (an error under `fullgraph=True`), and the compiler's own
backward over fake tensors must not be counted as a training step. The `aot_eager` backend
builds the same autograd graph as inductor (`CompiledFunctionBackward`) without a C compiler.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import pytest
import torch
from torch import nn

from tbptt_lint import trace
from tbptt_lint.tracer.steps import compiled_module

# From torch 2.3 dynamo traces module hooks and folds `torch.compiler.is_compiling()`; before,
# it runs global hooks on fake tensors while compiling and cannot inline per-module hooks that
# are bound methods, so `fullgraph=True` with `trace(model)` fails and compiled regions differ.
HOOKS_TRACED = hasattr(torch.compiler, "is_compiling")
needs_traced_hooks = pytest.mark.skipif(not HOOKS_TRACED, reason="dynamo of torch < 2.3")
if not HOOKS_TRACED:
    # Not run: torch 2.1's first compile re-wraps every optimizer's `step` so that global
    # optimizer step hooks stop firing for the rest of the process, which would fail later
    # tests. (With it, the unmarked tests here pass when run on their own.)
    pytest.skip("torch.compile of torch < 2.3 changes the process", allow_module_level=True)


@pytest.fixture(autouse=True)
def _fresh_compiler_state():
    # "global hooks on modules" warns once per compile; the tests look at results only.
    warnings.filterwarnings("ignore", message=".*global hooks on modules.*")
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def compiled_cell_windows(
    *, traced: str | None, fullgraph: bool = False, detach: bool = True, windows: int = 3
) -> tuple[list[torch.Tensor], object]:
    """Windows of 4 steps of a compiled GRUCell; `traced`: None (untraced), "all", "compiled"."""
    torch.manual_seed(0)
    cell = nn.GRUCell(3, 5)
    step = torch.compile(cell, backend="aot_eager", fullgraph=fullgraph)
    xs = torch.randn(windows * 4, 2, 3)
    h = torch.zeros(2, 5)

    def run() -> None:
        nonlocal h
        for w in range(windows):
            loss = torch.zeros(())
            for s in range(4):
                h = step(xs[4 * w + s], h)
                loss = loss + h.pow(2).mean()
            loss.backward(retain_graph=not detach)
            if detach:
                h = h.detach()

    if traced is None:
        run()
        return [p.grad.clone() for p in cell.parameters()], None
    with trace(None if traced == "all" else step) as t:
        run()
    return [p.grad.clone() for p in cell.parameters()], t


@pytest.mark.parametrize(
    ("traced", "fullgraph"),
    [
        ("all", False),
        ("all", True),
        ("compiled", False),
        pytest.param("compiled", True, marks=needs_traced_hooks),
    ],
)
def test_compiled_cell_counts_one_step_per_call(traced, fullgraph):
    untraced, _ = compiled_cell_windows(traced=None, fullgraph=fullgraph)
    grads, t = compiled_cell_windows(traced=traced, fullgraph=fullgraph)
    assert all(torch.equal(a, b) for a, b in zip(untraced, grads, strict=True))
    # One call per window: the compiler's backward over fake tensors is not a call.
    assert [(c.stride, c.horizon) for c in t.calls] == [(4, 4)] * 3
    assert not any(c.opaque for c in t.calls)
    if HOOKS_TRACED:  # each step is the compiled region's own node, tagged as that step
        compiled_nodes = [n for n in t.calls[0].snapshot.nodes if "CompiledFunction" in n.label]
        assert sorted(n.step for n in compiled_nodes) == [0, 1, 2, 3]
    t.assert_tbptt(k1=4, k2=4)
    assert not t._tracker.errors


def test_compiled_cell_state_never_cut_grows():
    _, t = compiled_cell_windows(traced="all", detach=False)
    assert [c.horizon for c in t.calls] == [4, 8, 12]
    with pytest.raises(AssertionError, match="grows"):
        t.assert_tbptt(k1=4, k2=4)


def test_compiled_sequence_module_steps_along_its_time_axis():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True)
    # Dynamo does not compile nn.LSTM by default: the wrapper runs it eagerly.
    step = torch.compile(lstm, backend="aot_eager")
    state = None
    with trace(None) as t:
        for _ in range(3):
            out, state = step(torch.randn(2, 6, 3), state)
            out.sum().backward(retain_graph=True)
            state = (state[0].detach(), state[1])  # c leaks
    assert [(c.stride, c.horizon) for c in t.calls] == [(6, 6), (6, 12), (6, 18)]
    assert "LSTM (compiled)" in t.report()
    assert re.search(r"Only `c`\s+leaks", t.report())


class LoopModel(nn.Module):
    """A whole window in one forward: compiled, its steps are out of the hooks' sight."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(3, 5)

    def forward(self, xs: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        for i in range(xs.shape[0]):
            h = self.cell(xs[i], h)
        return h


def loop_model_windows(stance: str | None) -> tuple[list[torch.Tensor], object]:
    torch.manual_seed(0)
    model = LoopModel()
    compiled = torch.compile(model, backend="aot_eager")
    xs = torch.randn(12, 2, 3)
    stance_context = torch.compiler.set_stance(stance) if stance else contextlib.nullcontext()
    with stance_context, trace(None) as t:
        h = torch.zeros(2, 5)
        for w in range(3):
            h = compiled(xs[4 * w : 4 * w + 4], h)
            h.pow(2).mean().backward()
            h = h.detach()
    return [p.grad.clone() for p in model.parameters()], t


@needs_traced_hooks
def test_steps_inside_compiled_code_are_opaque_and_say_how_to_see_them():
    _, t = loop_model_windows(None)
    assert len(t.calls) == 3
    # The wrapper feeds its output back, but it holds a cell: a container, not one step.
    assert all("CompiledFunctionBackward" in c.opaque for c in t.calls)
    with pytest.raises(AssertionError, match="force_eager") as raised:
        t.assert_tbptt(k1=4, k2=4)
    assert "no time step was seen" in str(raised.value)
    assert "force_eager" in t.report()


@pytest.mark.skipif(
    not hasattr(torch.compiler, "set_stance"), reason="torch.compiler.set_stance is torch 2.6+"
)
def test_force_eager_stance_makes_compiled_steps_visible():
    _, t = loop_model_windows("force_eager")
    assert [(c.stride, c.horizon) for c in t.calls] == [(4, 4)] * 3
    t.assert_tbptt(k1=4, k2=4)


def test_compiled_module_is_found_behind_its_wrapper():
    cell = nn.GRUCell(3, 5)
    assert compiled_module(torch.compile(cell, backend="aot_eager")) is cell
    assert compiled_module(cell) is None


class TinyCell(nn.Module):
    """A hand-written cell: no recurrent module inside, so one call is one step."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(torch.cat([x, h], -1)))


@pytest.mark.parametrize("kind", ["GRUCell", "TinyCell", "LoopModel"])
def test_module_compile_in_place(kind):
    # module.compile(): torch.nn's own frames are not compiled, but dynamo compiles the
    # frames they call, hooks included: the tracer's must still run, or nothing is seen.
    def run(traced: bool) -> tuple[list[torch.Tensor], object]:
        torch._dynamo.reset()
        torch.manual_seed(0)
        module = {
            "GRUCell": lambda: nn.GRUCell(3, 5),
            "TinyCell": TinyCell,
            "LoopModel": LoopModel,
        }[kind]()
        module.compile(backend="aot_eager")
        xs = torch.randn(12, 2, 3)
        with trace(None) if traced else contextlib.nullcontext() as t:
            h = torch.zeros(2, 5)
            for w in range(3):
                if kind == "LoopModel":
                    h = module(xs[4 * w : 4 * w + 4], h)
                else:
                    for i in range(4 * w, 4 * w + 4):
                        h = module(xs[i], h)
                h.pow(2).mean().backward()
                h = h.detach()
        return [p.grad.clone() for p in module.parameters()], t

    untraced, _ = run(traced=False)
    grads, t = run(traced=True)
    assert all(torch.equal(a, b) for a, b in zip(untraced, grads, strict=True))
    if kind == "LoopModel":  # its compiled forward hides the cell's calls
        assert [(c.stride, c.horizon) for c in t.calls] == [(0, 0)] * 3
        assert all("CompiledFunctionBackward" in c.opaque for c in t.calls)
        with pytest.raises(AssertionError, match="force_eager"):
            t.assert_tbptt(k1=4, k2=4)
    else:
        assert [(c.stride, c.horizon) for c in t.calls] == [(4, 4)] * 3
        t.assert_tbptt(k1=4, k2=4)
