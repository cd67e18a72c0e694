"""NTM copy-task script that carries the controller/memory state across epochs and silences
the resulting error with `backward(retain_graph=True)`.

Re-creates IBM/mi-prometheus 11f1cb3 (`ntm/main_copyTask.py`, added in 69d0c4a "update, fix
bug"; fixed in 037905e): `states` (controller state, attention, memory) is built once,
`output, states = ntm(inputs, states)` feeds each epoch's final state into the next epoch,
and `loss.backward(retain_graph=True)` keeps every epoch's graph so the next backward can run
through it again. Adam updates the weights in place between epochs, so epoch 2's backward
raises "one of the variables needed for gradient computation has been modified by an
inplace operation" (PyTorch 0.3 silently used wrong gradients and memory grew). Fix
(037905e): start every epoch from the initial state (`output, _ = ntm(inputs, states)`) and
drop `retain_graph`.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4
EXPECT_RAISES = "modified by an inplace operation"


class NTMCell(nn.Module):
    def __init__(self, in_dim, out_dim, state_units, slots, slot_size):
        super().__init__()
        self.controller = nn.GRUCell(in_dim + slot_size, state_units)
        self.key = nn.Linear(state_units, slot_size)
        self.write = nn.Linear(state_units, slot_size)
        self.out = nn.Linear(state_units + slot_size, out_dim)

    def forward(self, x, state):
        ctrl, weights, memory = state
        read = (weights.unsqueeze(-1) * memory).sum(dim=1)
        ctrl = self.controller(torch.cat([x, read], dim=-1), ctrl)
        weights = torch.softmax((memory @ self.key(ctrl).unsqueeze(-1)).squeeze(-1), dim=-1)
        memory = memory + weights.unsqueeze(-1) * torch.tanh(self.write(ctrl)).unsqueeze(1)
        output = torch.sigmoid(self.out(torch.cat([ctrl, read], dim=-1)))
        return output, (ctrl, weights, memory)


class NTM(nn.Module):
    def __init__(self, in_dim, out_dim, state_units, slots, slot_size):
        super().__init__()
        self.cell = NTMCell(in_dim, out_dim, state_units, slots, slot_size)

    def forward(self, x, state):
        outputs = []
        for j in range(x.size(1)):
            out, state = self.cell(x[:, j], state)
            outputs.append(out)
        return torch.stack(outputs, dim=1), state


def init_state(batch_size, state_units, slots, slot_size):
    weights = torch.zeros(batch_size, slots)
    weights[:, 0] = 1.0
    return torch.ones(batch_size, state_units) * 0.01, weights, torch.ones(batch_size, slots, slot_size) * 0.01


def train():
    torch.manual_seed(0)
    batch_size, element_size = 1, 5
    ntm = NTM(element_size, element_size, 4, 6, 3)
    states = init_state(batch_size, 4, 6, 3)
    inputs = (torch.rand(batch_size, K1, element_size) > 0.5).float()
    targets = inputs.clone()
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(ntm.parameters(), lr=0.01)
    for _iteration in range(4):  # "epoch" in the original: the same batch every time
        optimizer.zero_grad()
        output, states = ntm(inputs, states)
        loss = criterion(output, targets)
        loss.backward(retain_graph=True)  # expect: TBP005
        optimizer.step()


if __name__ == "__main__":
    train()
