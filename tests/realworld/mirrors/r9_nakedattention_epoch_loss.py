"""An attention classifier whose epoch loss is averaged as a tensor, graph and all.

Re-creates jostmey/NakedAttention a571886 (`model_and_script.py`): each batch's loss is
back-propagated and then `e_train += e_batch/len(loader_train)` keeps the whole epoch's graphs
(issue #1: out of RAM). Fix (2aa6b4c): `e_batch.detach()/len(loader_train)`.

The mirror's model runs a small GRU over a short sequence in place of the real network, so
that the tracer sees time steps; nothing is carried between batches.
"""

import torch
import torch.nn as nn

K1 = 3
K2 = 3


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[-1])


def train():
    torch.manual_seed(0)
    model = Model()
    loss = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    batches = [(torch.randn(K1, 4, 5), torch.randint(0, 3, (4,))) for _ in range(4)]
    for _i in range(2):
        model.train()
        e_train = 0.0
        for xs_batch, ys_batch in batches:
            ls_batch = model(xs_batch)
            e_batch = loss(ls_batch, ys_batch)
            optimizer.zero_grad()
            e_batch.backward()
            optimizer.step()
            e_train += e_batch / len(batches)  # expect: TBP006
        print(float(e_train))


if __name__ == "__main__":
    train()
