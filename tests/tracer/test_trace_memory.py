"""A long traced run keeps node-by-node graph snapshots for its latest calls only."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tbptt_lint import trace  # noqa: E402
from tbptt_lint.tracer.session import SNAPSHOT_HISTORY  # noqa: E402


def test_old_calls_drop_their_snapshots_and_are_still_drawn(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cell = torch.nn.RNNCell(3, 4)
    h = torch.zeros(2, 4)
    windows = SNAPSHOT_HISTORY + 8
    with trace(cell) as t:
        for _ in range(windows):
            h = h.detach()
            loss = torch.zeros(())
            for _ in range(3):
                h = cell(torch.randn(2, 3), h)
                loss = loss + h.sum()
            loss.backward()
    assert len(t.calls) == windows
    kept = [c.index for c in t.calls if c.snapshot is not None]
    assert kept == list(range(windows - SNAPSHOT_HISTORY, windows))
    assert all(c.horizon == 3 for c in t.calls)
    first = tmp_path / "first.dot"
    t.save_graph(first, call=0)
    assert "digraph" in first.read_text(encoding="utf-8")


def test_sequence_bits_is_a_set_of_numbers() -> None:
    from tbptt_lint.tracer.steps import SequenceBits

    bits = SequenceBits()
    numbers = [0, 7, 8, 9, 1000, 123_456, 2**64 - 1]  # the last is AccumulateGrad's number
    for n in numbers:
        bits.add(n)
    assert all(n in bits for n in numbers)
    assert not any(n in bits for n in (1, 6, 10, 999, 1001, 123_457, 2**63, -1))
    assert len(bits.bits) < 123_456 // 8 * 2 + 16  # one bit per number, doubling growth
