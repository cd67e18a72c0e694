"""A trainer that appends each batch's dict of undetached losses to the epoch's list.

Re-creates tier4/Diffusion-Planner 8314659 (`diffusion_planner/train_epoch.py`): after
`loss["loss"].backward()` the loop does `epoch_loss.append(loss)`, where `loss` is the dict the
loss function returned with the total added under "loss"; the values become floats only after
the epoch, so every batch's graph lives until then (PR #372 detaches before the append).

The mirror's model runs a small GRU over a short sequence in place of the real network, so
that the tracer sees time steps; nothing is carried between batches.
"""

import torch
import torch.nn as nn

K1 = 3
K2 = 3


def compute_training_loss(model, x, y):
    out = model(x)
    return {
        "ego_planning_loss": nn.functional.mse_loss(out, y),
        "neighbor_prediction_loss": out.abs().mean(),
    }


def get_epoch_mean_loss(epoch_loss):
    keys = epoch_loss[0].keys()
    return {k: sum(d[k].item() for d in epoch_loss) / len(epoch_loss) for k in keys}


def train_epoch(batches, model, optimizer):
    epoch_loss = []
    model.train()
    for x, y in batches:
        optimizer.zero_grad()
        loss = compute_training_loss(model, x, y)
        loss["loss"] = loss["ego_planning_loss"] + 0.1 * loss["neighbor_prediction_loss"]
        loss["loss"].backward()
        optimizer.step()
        epoch_loss.append(loss)  # expect: TBP006
    return get_epoch_mean_loss(epoch_loss)


class Planner(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[-1])


def train():
    torch.manual_seed(0)
    model = Planner()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    batches = [(torch.randn(K1, 4, 3), torch.randn(4, 2)) for _ in range(4)]
    print(train_epoch(batches, model, optimizer))


if __name__ == "__main__":
    train()
