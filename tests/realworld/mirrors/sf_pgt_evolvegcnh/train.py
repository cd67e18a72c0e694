"""EvolveGCN-H example whose evolved weight (the GRU's state, kept on the layer) crosses epochs uncut.

Re-creates benedekrozemberczki/pytorch_geometric_temporal 0923ad8
(`examples/recurrent/evolvegcnh_example.py` before commit 987e43e, issue #305): every epoch
runs the model over all snapshots, sums the losses and back-propagates once; the layer's
`self.weight` is never reset or detached, so the first snapshot of epoch 2 continues from the
graph that epoch 1's backward freed, and epoch 2's backward raises "Trying to backward
through the graph a second time". Fix (987e43e): after `optimizer.step()`,
`model.recurrent.weight = model.recurrent.weight.detach()`.
"""

import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evolve_layers import EvolveLayer  # noqa: E402

K1 = 4
K2 = 4
EXPECT_RAISES = "Trying to backward through the graph a second time"


class RecurrentGCN(nn.Module):
    def __init__(self, node_features):
        super().__init__()
        self.recurrent = EvolveLayer(node_features)
        self.linear = nn.Linear(node_features, 1)

    def forward(self, x, adjacency):
        h = self.recurrent(x, adjacency)
        h = nn.functional.relu(h)
        return self.linear(h)


def train():
    torch.manual_seed(0)
    nodes, features = 6, 4
    snapshots = [
        (torch.randn(nodes, features), torch.rand(nodes, nodes), torch.randn(nodes, 1))
        for _ in range(K1)
    ]
    model = RecurrentGCN(features)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _pass in range(3):  # one pass over the snapshots = one epoch of the original
        cost = 0
        for time, (x, adjacency, y) in enumerate(snapshots):
            y_hat = model(x, adjacency)  # expect: TBP001
            cost = cost + torch.mean((y_hat - y) ** 2)
        cost = cost / (time + 1)
        cost.backward()
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    train()
