"""TGCN example that never hands the recurrent layer its previous hidden state.

Re-creates benedekrozemberczki/pytorch_geometric_temporal e43e95d
(`examples/recurrent/tgcn_example.py` before commit 4de6d86 "Corrected implementation of tgcn
example"): the model calls the TGCN cell as `self.recurrent(x, edge_index, edge_weight)`,
whose `H=None` default makes a zero state at every snapshot, while the epoch loop sums the
losses of all snapshots and back-propagates once per epoch as if the state flowed through
the sequence. Nothing raises, but no information passes between snapshots: the gradient
horizon is one step instead of the whole sequence. Fix (4de6d86): return the new state from
`forward` and pass it back in at the next snapshot.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class GraphGRUCell(nn.Module):
    """A TGCN-like cell: a graph convolution feeding GRU-style gates."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.out_channels = out_channels
        self.conv = nn.Linear(in_channels, 3 * out_channels)
        self.hidden = nn.Linear(out_channels, 3 * out_channels)

    def forward(self, x, adjacency, H=None):
        if H is None:
            H = torch.zeros(x.size(0), self.out_channels)
        gx = (adjacency @ self.conv(x)).chunk(3, dim=-1)
        gh = self.hidden(H).chunk(3, dim=-1)
        z = torch.sigmoid(gx[0] + gh[0])
        r = torch.sigmoid(gx[1] + gh[1])
        candidate = torch.tanh(gx[2] + r * gh[2])
        return z * H + (1 - z) * candidate


class RecurrentGCN(nn.Module):
    def __init__(self, node_features):
        super().__init__()
        self.recurrent = GraphGRUCell(node_features, 16)
        self.linear = nn.Linear(16, 1)

    def forward(self, x, adjacency):
        h = self.recurrent(x, adjacency)  # expect: TBP015
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
    for _epoch in range(3):
        cost = 0
        for time, (x, adjacency, y) in enumerate(snapshots):
            y_hat = model(x, adjacency)
            cost = cost + torch.mean((y_hat - y) ** 2)
        cost = cost / (time + 1)
        cost.backward()
        optimizer.step()
        optimizer.zero_grad()


if __name__ == "__main__":
    train()
