"""A generative label model fitted batch by batch, with the epoch's loss summed as a tensor.

Re-creates BatsResearch/labelmodels 3b5683b (`labelmodels/label_model.py`):
`_do_estimate_label_model` back-propagates each batch's negative log-likelihood and then does
`running_loss += loss`. Nothing raises, but the running total keeps every batch's graph until
the epoch ends. Fix (3801b62): `running_loss += loss.item()`.

The mirror's model runs a small GRU over a short sequence in place of the real network, so
that the tracer sees time steps; nothing is carried between batches.
"""

import torch
import torch.nn as nn

K1 = 3
K2 = 3


class LabelModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 3)
        self.accuracy = nn.Parameter(torch.full((3,), 0.7))

    def forward(self, votes):
        out, _ = self.gru(votes)
        return (out[-1] * self.accuracy).sum(dim=1)

    def _regulariser(self):
        return 0.0

    def estimate(self, batches, epochs):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        for _epoch in range(epochs):
            self.train()
            running_loss = 0.0
            for votes in batches:
                optimizer.zero_grad()
                log_likelihood = self(votes)
                loss = -1 * torch.mean(log_likelihood)
                loss += self._regulariser()
                loss.backward()
                optimizer.step()
                running_loss += loss  # expect: TBP006
            print(running_loss / len(batches))


def train():
    torch.manual_seed(0)
    batches = [torch.randn(K1, 4, 3) for _ in range(4)]
    LabelModel().estimate(batches, 2)


if __name__ == "__main__":
    train()
