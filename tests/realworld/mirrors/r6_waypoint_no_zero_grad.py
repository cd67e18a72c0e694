"""Waypoint predictor training loop that steps every batch and never clears gradients.

Re-creates wz0919/waypoint-predictor ac35754 (`waypoint_predictor.py`, issue #4): each batch
runs `total_loss.backward()` and `optimizer.step()`, and no `zero_grad()` appears anywhere in
the file. Nothing raises; `.grad` accumulates over all batches, so step n applies the sum of
the gradients of batches 1..n. Fix: `optimizer.zero_grad()` before the backward.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


def train():
    torch.manual_seed(0)
    encoder = nn.GRU(6, 8, batch_first=True)
    predictor = nn.Linear(8, 12)
    optimizer = torch.optim.AdamW(list(predictor.parameters()) + list(encoder.parameters()), lr=1e-3)
    criterion_mse = nn.MSELoss(reduction="none")
    trainloader = [(torch.randn(2, K1, 6), torch.rand(2, 12)) for _ in range(3)]
    for _epoch in range(2):
        sum_loss = 0.0
        for i, (feats, target) in enumerate(trainloader):
            out, _ = encoder(feats)
            logits = predictor(out[:, -1])
            total_loss = criterion_mse(logits, target).sum() / logits.size(0)
            total_loss.backward()
            optimizer.step()  # expect: TBP012
            sum_loss += total_loss.item()
        _ = sum_loss / (i + 1)


if __name__ == "__main__":
    train()
