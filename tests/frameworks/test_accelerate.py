"""A TBPTT loop that calls `accelerator.backward(loss)`, traced on the CPU: exact strides and
horizons through accelerate's prepared model and optimizer, and a carried state caught."""

from __future__ import annotations

import pytest

accelerate = pytest.importorskip("accelerate")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer import Trace  # noqa: E402

torch.set_num_threads(1)

SEQ, WINDOW = 12, 4


def _train(detach: bool) -> tuple[list[tuple[int, int]], Trace]:
    torch.manual_seed(0)
    accelerator = accelerate.Accelerator(cpu=True)
    cell = nn.LSTMCell(3, 5)
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.01)
    cell, optimizer = accelerator.prepare(cell, optimizer)
    x = torch.randn(SEQ, 2, 3)
    with trace(cell) as t:
        h = c = torch.zeros(2, 5)
        for start in range(0, SEQ, WINDOW):
            if detach:
                h, c = h.detach(), c.detach()
            loss = torch.zeros(())
            for step in range(start, start + WINDOW):
                h, c = cell(x[step], (h, c))
                loss = loss + h.pow(2).mean()
            accelerator.backward(loss, retain_graph=not detach)
            if detach:  # a step would change weights the leaking variant's carried graph saved
                optimizer.step()
            optimizer.zero_grad()
    return [(call.stride, call.horizon) for call in t.calls], t


def test_accelerator_backward_windows_are_exact() -> None:
    measured, t = _train(detach=True)
    assert measured == [(WINDOW, WINDOW)] * (SEQ // WINDOW)
    t.assert_tbptt(k1=WINDOW, k2=WINDOW)


def test_state_carried_through_accelerator_backward_is_caught() -> None:
    measured, t = _train(detach=False)
    assert [h for _, h in measured] == [WINDOW, 2 * WINDOW, 3 * WINDOW]
    with pytest.raises(AssertionError, match="still references the graph"):
        t.assert_tbptt(k1=WINDOW, k2=WINDOW)
