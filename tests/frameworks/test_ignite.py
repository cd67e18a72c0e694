"""ignite's `create_supervised_tbptt_trainer(..., tbtt_step=K)` traced with `trace(model)`:
stride and horizon K, the last, shorter chunk of each sequence a tail that passes."""

from __future__ import annotations

import pytest

tbptt = pytest.importorskip("ignite.contrib.engines.tbptt")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tbptt_lint import trace  # noqa: E402

torch.set_num_threads(1)


class Recurrent(nn.Module):
    """ignite's convention: `model(x_chunk, hidden)` gives `(prediction, hidden)`, time first."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 5)
        self.head = nn.Linear(5, 1)

    def forward(
        self, x: torch.Tensor, hidden: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, hidden = self.rnn(x, hidden)
        return self.head(out), hidden


def _run(seq: int, k: int, batches: int = 2) -> list[tuple[int, int]]:
    torch.manual_seed(0)
    model = Recurrent()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    trainer = tbptt.create_supervised_tbptt_trainer(model, optimizer, nn.MSELoss(), tbtt_step=k)
    data = [(torch.randn(seq, 2, 3), torch.randn(seq, 2, 1)) for _ in range(batches)]
    with trace(model) as t:
        trainer.run(data, max_epochs=1)
    t.assert_tbptt(k1=k, k2=k)
    return [(c.stride, c.horizon) for c in t.calls]


@pytest.mark.parametrize("k", [3, 4])
def test_tbtt_step_is_stride_and_horizon(k: int) -> None:
    assert _run(seq=12, k=k) == [(k, k)] * (2 * 12 // k)


def test_last_shorter_chunk_of_each_sequence_passes_as_a_tail() -> None:
    assert _run(seq=10, k=4) == [(4, 4), (4, 4), (2, 2)] * 2
