"""A top-level epoch loop that sums each batch's loss and its two parts as tensors.

Re-creates samuelyu2002/ImVisible a463a0a (`Model/training.py`): after each batch's backward
the script does `running_loss += loss`, `running_loss_MSE += MSE` and
`running_loss_cross_entropy += cross_entropy`, keeping every batch's graph to the end of the
epoch (issue #2: the machine ran out of RAM). Fix (e536e5e): `.item()` on each.

The mirror's model runs a small GRU over a short sequence in place of the real network, so
that the tracer sees time steps; nothing is carried between batches.
"""

import torch
import torch.nn as nn

K1 = 3
K2 = 3


def my_loss(classes, direc, points, mode):
    mse = nn.functional.mse_loss(direc, points)
    ce = nn.functional.cross_entropy(classes, mode)
    return mse + ce, mse, ce


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 8)
        self.head = nn.Linear(8, 5 + 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[-1])


def train():
    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
    for _epoch in range(2):
        running_loss = 0.0
        running_loss_mse = 0.0
        running_loss_ce = 0.0
        for _j in range(4):
            optimizer.zero_grad()
            images = torch.randn(K1, 4, 6)
            mode = torch.randint(0, 5, (4,))
            points = torch.randn(4, 4)
            out = net(images)
            loss, mse, ce = my_loss(out[:, :5], out[:, 5:], points, mode)
            loss.backward()
            optimizer.step()
            running_loss += loss  # expect: TBP006
            running_loss_mse += mse
            running_loss_ce += ce
        print(running_loss / 4, running_loss_mse / 4, running_loss_ce / 4)


if __name__ == "__main__":
    train()
