"""Small training loops for the tracer tests: each returns nothing and runs a few windows."""

from __future__ import annotations

import torch
from torch import nn

# These loops use tiny tensors: intra-op threads only add OpenMP spin-waits, which on a
# loaded 2-core machine made the suite ~10x slower.
torch.set_num_threads(1)


def cell_windows(
    cell: nn.Module,
    *,
    steps: int = 40,
    window: int = 10,
    lstm: bool = False,
    detach_h: bool = True,
    detach_c: bool = True,
    detach_every_step: bool = False,
    retain_graph: bool = False,
    batch: int = 3,
) -> None:
    torch.manual_seed(1)
    hidden = cell.hidden_size
    x = torch.randn(steps, batch, cell.input_size)
    h = torch.zeros(batch, hidden)
    c = torch.zeros(batch, hidden)
    for start in range(0, steps, window):
        if detach_h:
            h = h.detach()
        if detach_c:
            c = c.detach()
        loss = torch.zeros(())
        for t in range(start, start + window):
            if detach_every_step:
                h, c = h.detach(), c.detach()
            if lstm:
                h, c = cell(x[t], (h, c))
            else:
                h = cell(x[t], h)
            loss = loss + h.pow(2).mean()
        loss.backward(retain_graph=retain_graph)


def sequence_windows(
    rnn: nn.RNNBase, *, steps: int = 40, window: int = 10, leak: bool = False, batch: int = 3
) -> None:
    torch.manual_seed(2)
    shape = (batch, steps, rnn.input_size) if rnn.batch_first else (steps, batch, rnn.input_size)
    x = torch.randn(shape)
    hx = None
    for start in range(0, steps, window):
        xs = x[:, start : start + window] if rnn.batch_first else x[start : start + window]
        if hx is not None and not leak:
            hx = tuple(s.detach() for s in hx) if isinstance(hx, tuple) else hx.detach()
        out, hx = rnn(xs, hx)
        out.pow(2).mean().backward(retain_graph=leak)


class TinyCell(nn.Module):
    """A hand-written Elman cell: nothing marks it as recurrent but `h = cell(x, h)`."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(features, hidden)
        self.rec = nn.Linear(hidden, hidden, bias=False)
        self.input_size = features
        self.hidden_size = hidden

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.inp(x) + self.rec(h))


class CutInForward(nn.Module):
    """A model that detaches the incoming state itself, once per window call."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(features, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, xs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = h.detach()
        outs = []
        for t in range(xs.shape[0]):
            h = self.cell(xs[t], h)
            outs.append(self.head(h))
        return torch.stack(outs), h


def k1k2_chain(
    k1: int,
    k2: int,
    steps: int = 20,
    *,
    clear_stale: bool = True,
    retain_graph: bool = True,
    sequences: int = 1,
) -> None:
    """The forum recipe: leaf states and `prev_state.backward(leaf.grad)` chains; each of
    `sequences` sequences of `steps` steps starts from a state made anew."""
    torch.manual_seed(3)
    cell = nn.RNNCell(4, 6)
    head = nn.Linear(6, 1)
    for _ in range(sequences):
        xs = torch.randn(steps, 2, 4)
        states: list[tuple[torch.Tensor | None, torch.Tensor]] = [(None, torch.zeros(2, 6))]
        for j in range(steps):
            state = states[-1][1].detach()
            state.requires_grad_()
            new_state = cell(xs[j], state)
            states.append((state, new_state))
            while len(states) > k2:
                del states[0]
            if (j + 1) % k1 == 0:
                if clear_stale:
                    for leaf, _ in states:
                        if leaf is not None:
                            leaf.grad = None
                head(new_state).pow(2).mean().backward(retain_graph=retain_graph)
                for i in range(k2 - 1):
                    if states[-i - 2][0] is None:
                        break
                    states[-i - 2][1].backward(states[-i - 1][0].grad, retain_graph=retain_graph)
