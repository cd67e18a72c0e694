"""The tracer's per-thread stack of running forwards stays right whatever happens: a forward
that raises (and code that catches it), recomputation during backward (checkpointing,
reentrant or not, early stop on or off), and nested calls. A module left on the stack by a
forward whose post-hook never ran used to turn the next counted step's module into a
"container", after which nothing was counted (issue 15)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint, set_checkpoint_early_stop

from tbptt_lint import trace


class Cell(nn.Module):
    """A hand-written cell: no nn.RNNCell inside, so the tracer learns it is a step."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.fail_on_call = fail_on_call
        self.calls = 0

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise ValueError("bad input")
        return torch.tanh(self.lin(h))


def windows(step, *, count: int = 3, length: int = 3, leaf: bool = False):
    """`count` windows of `length` steps, the state cut between windows."""
    torch.manual_seed(0)
    h = torch.randn(2, 8)
    for _ in range(count):
        h = h.detach().requires_grad_(leaf)
        for _ in range(length):
            h = step(h)
        h.sum().backward()


@pytest.mark.parametrize("early_stop", [True, False], ids=["early-stop", "no-early-stop"])
def test_non_reentrant_checkpoint_of_a_hand_written_cell(early_stop):
    cell = Cell()
    with set_checkpoint_early_stop(early_stop), trace(cell) as t:
        windows(lambda h: checkpoint(cell, h, use_reentrant=False))
    assert [c.horizon for c in t.calls] == [3, 3, 3]
    assert [c.stride for c in t.calls] == [3, 3, 3]
    t.assert_tbptt(k1=3, k2=3)


def test_reentrant_checkpoint_of_a_hand_written_cell_keeps_counting_steps():
    cell = Cell()
    with trace(cell) as t:
        # A reentrant checkpoint needs an input that requires grad to back-propagate at all.
        windows(lambda h: checkpoint(cell, h, use_reentrant=True), leaf=True)
    assert [c.stride for c in t.calls] == [3, 3, 3]
    # Its backward is one opaque node: the horizon cannot be seen, and the tracer says so.
    assert all("CheckpointFunctionBackward" in c.opaque for c in t.calls)


def test_a_forward_that_raised_and_was_caught_leaves_counting_intact():
    cell = Cell(fail_on_call=2)

    def step(h: torch.Tensor) -> torch.Tensor:
        try:
            return cell(h)
        except ValueError:
            return cell(h)  # the caller retries

    with trace(cell) as t:
        windows(step)
    assert [c.horizon for c in t.calls] == [3, 3, 3]
    assert [c.stride for c in t.calls] == [3, 3, 3]


class Model(nn.Module):
    """A container: its forward runs the cell, and a failing cell call falls back to it."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = Cell(fail_on_call=4)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        try:
            return self.cell(h)
        except ValueError:
            return self.cell(h)


def test_nested_calls_with_a_caught_failure_inside_a_container():
    model = Model()
    with trace(model) as t:
        windows(model, count=4, length=2)
    assert [c.horizon for c in t.calls] == [2, 2, 2, 2]
    assert [c.stride for c in t.calls] == [2, 2, 2, 2]
    # Every step is the cell's: the container was not taken for a step, nor the cell for one.
    assert {step["module"] for step in t.to_dict()["steps"]} == {"cell"}
