"""Spiking layers keep their membrane state on `self` between calls, and the network's
`zero_grad()` is what cuts it.

Re-creation of the idiom in synsense/sinabs (StatefulLayer.zero_grad, DynapcnnNetwork.zero_grad,
tests/test_dynapcnn/test_learning.py at 904eb89): the training loop never detaches the state
itself; `net.zero_grad()` forwards to every stateful layer, whose override detaches its
buffers in place before the next forward. Correct: each backward reaches one call of K1 steps.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 5


class StatefulLeaky(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.cell = nn.RNNCell(n_in, n_out)
        self.register_buffer("v_mem", torch.zeros(0))

    def forward(self, x):
        if self.v_mem.numel() == 0:
            self.v_mem = torch.zeros(x.size(1), self.cell.hidden_size)
        spikes = []
        for t in range(x.size(0)):
            self.v_mem = self.cell(x[t], self.v_mem)
            spikes.append(torch.sigmoid(4.0 * (self.v_mem - 0.5)))
        return torch.stack(spikes)

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        for b in self.buffers():
            if b.grad_fn is not None:
                b.detach_()


class DeployedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([StatefulLeaky(3, 8)])
        self.readout = nn.Linear(8, 1)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.readout(x)

    def zero_grad(self, set_to_none=True):
        for layer in self.layers:
            layer.zero_grad(set_to_none)


def train():
    torch.manual_seed(0)
    net = DeployedNet()
    input_data = torch.rand(K1, 2, 3)
    optim = torch.optim.Adam(net.parameters())
    criterion = nn.MSELoss()
    for _ in range(4):
        optim.zero_grad()
        net.zero_grad()
        out = net(input_data)
        loss = criterion(out.mean(), torch.tensor(1.0))
        loss.backward()
        optim.step()


if __name__ == "__main__":
    train()
