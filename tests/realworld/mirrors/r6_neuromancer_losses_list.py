"""Library `Trainer.train` that keeps each batch's back-propagated metric for the epoch mean.

Re-creates pnnl/neuromancer d93bf89 (`src/neuromancer/trainer.py`, fixed by PR #292 "Fixing
leaking autograd graph memory in Trainer"): the model returns a dict of metrics, the training
metric is back-propagated, and the same tensor is appended to `losses`, stacked into the epoch
mean once the epoch is over. Nothing raises, but the list keeps every batch's graph alive for
the epoch. Fix: append `output[self.train_metric].detach()`.
"""

import torch
import torch.nn as nn

K1 = 6
K2 = 6


class Problem(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, batch):
        out, _ = self.gru(batch["x"])
        return {"train_loss": nn.functional.mse_loss(self.head(out), batch["y"])}


class Trainer:
    def __init__(self, model, train_data, epochs=2, train_metric="train_loss"):
        self.model = model
        self.train_data = train_data
        self.epochs = epochs
        self.train_metric = train_metric
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(self):
        for _i in range(self.epochs):
            self.model.train()
            losses = []
            for t_batch in self.train_data:
                output = self.model(t_batch)
                self.optimizer.zero_grad()
                output[self.train_metric].backward()
                self.optimizer.step()
                losses.append(output[self.train_metric])  # expect: TBP006
            output[f"mean_{self.train_metric}"] = torch.mean(torch.stack(losses))


def train():
    torch.manual_seed(0)
    data = [{"x": torch.randn(2, K1, 2), "y": torch.randn(2, K1, 2)} for _ in range(4)]
    Trainer(Problem(), data).train()


if __name__ == "__main__":
    train()
