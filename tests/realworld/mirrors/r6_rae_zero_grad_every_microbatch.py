"""Accumulating trainer that zeroes the gradient before every micro-batch.

Re-creates bytetriper/RAE a4d18c4 (`src/train.py`, issue #67): `optimizer.zero_grad()` runs at
the top of every batch while `optimizer.step()` runs only when `global_step % grad_accum_steps
== 0`. Nothing raises, but each zero_grad wipes the micro-batches before it, so every step
applies only the last micro-batch's gradient (scaled by 1 / grad_accum_steps). Fix: zero the
gradient right after the step, inside the same condition.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


def train():
    torch.manual_seed(0)
    gru = nn.GRU(4, 8, batch_first=True)
    head = nn.Linear(8, 4)
    params = list(gru.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    grad_accum_steps = 2
    loader = [torch.randn(3, K1, 4) for _ in range(4)]
    global_step = 0
    for _epoch in range(2):
        optimizer.zero_grad()
        running_loss = 0.0
        for z in loader:
            optimizer.zero_grad(set_to_none=True)  # expect: TBP012
            out, _ = gru(z)
            loss = nn.functional.mse_loss(head(out), z)
            (loss / grad_accum_steps).backward()
            if global_step % grad_accum_steps == 0:
                optimizer.step()
            running_loss += loss.item()
            global_step += 1


if __name__ == "__main__":
    train()
