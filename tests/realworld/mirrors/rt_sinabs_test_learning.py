"""A spiking net whose membrane state lives on its layers is trained, but the state cut is
applied to a deployed deep copy instead of the net that is run.

Re-creation of the pattern in synsense/sinabs tests/test_learning.py at def69da: the layers
keep `v_mem` on `self` between calls; `zero_grad()` of the stateful layers detaches that
state, but the loop calls `zero_grad()` on the copied network and runs the original one, so
the original's state reaches the next window's backward uncut. The second backward raises
"Trying to backward through the graph a second time". Fix (de91157): run the network whose
`zero_grad()` is called (or reset/detach the state of the net that is run).
"""

import copy

import torch
import torch.nn as nn

K1 = 5
K2 = 5
EXPECT_RAISES = "Trying to backward through the graph a second time"


class StatefulLeaky(nn.Module):
    """Membrane state on self, carried from call to call, cut by zero_grad()."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.cell = nn.RNNCell(n_in, n_out)
        self.v_mem = None

    def forward(self, x):
        if self.v_mem is None:
            self.v_mem = torch.zeros(x.size(1), self.cell.hidden_size)
        spikes = []
        for t in range(x.size(0)):
            self.v_mem = self.cell(x[t], self.v_mem)
            spikes.append(torch.sigmoid(4.0 * (self.v_mem - 0.5)))
        return torch.stack(spikes)

    def zero_grad(self, set_to_none=True):
        super().zero_grad(set_to_none)
        if self.v_mem is not None:
            self.v_mem = self.v_mem.detach()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.spk = StatefulLeaky(3, 8)
        self.readout = nn.Linear(8, 1)

    def forward(self, x):
        return self.readout(self.spk(x))

    def zero_grad(self, set_to_none=True):
        self.spk.zero_grad(set_to_none)
        self.readout.zero_grad(set_to_none)


def train():
    torch.manual_seed(0)
    snn = Net()
    deployed = copy.deepcopy(snn)
    input_data = torch.rand(K1, 2, 3)

    optim = torch.optim.Adam(deployed.parameters())
    criterion = nn.MSELoss()
    for _ in range(4):
        optim.zero_grad()
        deployed.zero_grad()

        out = snn(input_data)  # expect: TBP001
        loss = criterion(out.mean(), torch.tensor(1.0))
        loss.backward()

        optim.step()


if __name__ == "__main__":
    train()
