"""Recommender `Trainer._train_epoch` that keeps every batch's back-propagated loss in a list.

Re-creates RUCAIBox/RecBole f681a5f (`recbox/trainer/trainer.py` before commit f8d8714 "FIX:
bug of storing loss in each batch cause out of memory in Trainer"): after
`loss.backward()` and `optimizer.step()` the loop appends the loss tensor to `losses_list`
and sums the list once the epoch is over. Nothing raises, but the list keeps the autograd
graph of every batch (here a GRU session encoder) alive for the whole epoch, so memory grows
with the number of batches. Fix: accumulate `loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class SessionGRU(nn.Module):
    def __init__(self, items, hidden_size):
        super().__init__()
        self.embed = nn.Embedding(items, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, items)

    def calculate_loss(self, interaction):
        seq, target = interaction
        out, _ = self.gru(self.embed(seq))
        return nn.functional.cross_entropy(self.out(out[:, -1]), target)


class Trainer:
    def __init__(self, model):
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def _check_nan(self, loss):
        if torch.isnan(loss):
            raise ValueError("Training loss is nan")

    def _train_epoch(self, train_data, epoch_idx):
        self.model.train()
        losses_list = []
        for batch_idx, interaction in enumerate(train_data):
            self.optimizer.zero_grad()
            losses = self.model.calculate_loss(interaction)
            loss = sum(losses) if isinstance(losses, tuple) else losses
            self._check_nan(loss)
            loss.backward()
            self.optimizer.step()
            losses_list.append(losses)  # expect: TBP006
        return sum(losses_list).item()

    def fit(self, train_data, epochs):
        for epoch_idx in range(epochs):
            _train_loss = self._train_epoch(train_data, epoch_idx)


def train():
    torch.manual_seed(0)
    items = 20
    train_data = [(torch.randint(0, items, (4, K1)), torch.randint(0, items, (4,))) for _ in range(4)]
    Trainer(SessionGRU(items, 16)).fit(train_data, epochs=2)


if __name__ == "__main__":
    train()
