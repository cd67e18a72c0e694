"""EvolveGCN-O example that papers over its uncut evolving weight with `retain_graph=True`.

Re-creates benedekrozemberczki/pytorch_geometric_temporal 0923ad8
(`examples/recurrent/evolvegcno_example.py` before commit 987e43e, issue #305): the layer keeps
the GRU-evolved weight on `self.weight` across calls and across epochs; the per-epoch
`cost.backward(retain_graph=True)` keeps every epoch's graph alive so that the next epoch's
backward can run through it again. Adam updates the weights in place between epochs, so
epoch 2's backward, re-entering epoch 1's graph, raises "one of the variables needed for
gradient computation has been modified by an inplace operation" (on older PyTorch it
silently used wrong gradients). Fix (987e43e): detach `model.recurrent.weight` after each
epoch.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4
EXPECT_RAISES = "modified by an inplace operation"


class EvolveLayerO(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.initial_weight = nn.Parameter(torch.randn(1, channels, channels) * 0.1)
        self.recurrent_layer = nn.GRU(channels, channels)
        self.weight = None

    def forward(self, x, adjacency):
        if self.weight is None:
            _, self.weight = self.recurrent_layer(self.initial_weight, self.initial_weight)
        else:
            _, self.weight = self.recurrent_layer(self.weight, self.weight)
        return adjacency @ x @ self.weight.squeeze(0)


class RecurrentGCN(nn.Module):
    def __init__(self, node_features):
        super().__init__()
        self.recurrent = EvolveLayerO(node_features)
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
            y_hat = model(x, adjacency)
            cost = cost + torch.mean((y_hat - y) ** 2)
        cost = cost / (time + 1)
        cost.backward(retain_graph=True)  # expect: TBP005
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    train()
