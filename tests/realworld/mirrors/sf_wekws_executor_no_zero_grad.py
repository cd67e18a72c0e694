"""Keyword-spotting `Executor.train` that steps the optimizer every batch but never clears grads.

Re-creates wenet-e2e/wekws 41a3432 (`kws/utils/executor.py` before commit 141d407, issue #72):
the executor runs the GRU model on a batch, back-propagates, clips and calls
`optimizer.step()`, but nothing ever calls `optimizer.zero_grad()`. Nothing raises; `.grad`
accumulates over all batches, so step n applies the sum of the gradients of batches 1..n.
Fix: `optimizer.zero_grad()` before `loss.backward()`.
"""

import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_

K1 = 8
K2 = 8


class KWSModel(nn.Module):
    def __init__(self, features, hidden_size, keywords):
        super().__init__()
        self.gru = nn.GRU(features, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, keywords)

    def forward(self, feats):
        out, _ = self.gru(feats)
        return self.head(out)


def criterion(logits, target):
    return nn.functional.cross_entropy(logits.max(dim=1).values, target)


class Executor:
    def __init__(self):
        self.step = 0

    def train(self, model, optimizer, data_loader, clip=50.0):
        model.train()
        for batch_idx, (feats, target) in enumerate(data_loader):
            logits = model(feats)
            loss = criterion(logits, target)
            loss.backward()
            grad_norm = clip_grad_norm_(model.parameters(), clip)
            if torch.isfinite(grad_norm):
                optimizer.step()  # expect: TBP012
            self.step += 1

    def cv(self, model, data_loader):
        model.eval()
        total_loss = 0.0
        with torch.no_grad():
            for feats, target in data_loader:
                loss = criterion(model(feats), target)
                total_loss += loss.item()
        return total_loss


def train():
    torch.manual_seed(0)
    data = [(torch.randn(4, K1, 5), torch.randint(0, 3, (4,))) for _ in range(4)]
    model = KWSModel(5, 16, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    executor = Executor()
    for _epoch in range(2):
        executor.train(model, optimizer, data)
        executor.cv(model, data)


if __name__ == "__main__":
    train()
