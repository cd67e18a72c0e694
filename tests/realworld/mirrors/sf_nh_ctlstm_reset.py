"""Continuous-time LSTM (neural Hawkes) whose state is re-initialised at every time step.

Re-creates xiao03/nh de8062e (`CTLSTM.forward`, reported in issue #3): the time loop calls
`self.init_states(batch_size)` at the top of every step, so `self.h_d`, `self.c_d` and
`self.c_bar` are zeros whenever the recurrence reads them. Nothing raises, but no
information flows between events: each step's gradient reaches back one step instead of the
whole sequence. Fix: call `self.init_states(batch_size)` once, before the loop.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

K1 = 6
K2 = 6


class CTLSTMCell(nn.Module):
    """One event: the continuous-time LSTM recurrence followed by the decay to the next event."""

    def __init__(self, hidden_size):
        super().__init__()
        self.rec = nn.Linear(2 * hidden_size, 7 * hidden_size)

    def forward(self, emb_event_t, duration_t, state):
        h_d_tm1, c_d_tm1, c_bar_tm1 = state
        gates = torch.chunk(self.rec(torch.cat((emb_event_t, h_d_tm1), dim=1)), 7, -1)
        gate_i, gate_f, gate_z, gate_o, gate_i_bar, gate_f_bar, gate_delta = gates
        gate_z = torch.tanh(gate_z)
        c_t = torch.sigmoid(gate_f) * c_d_tm1 + torch.sigmoid(gate_i) * gate_z
        c_bar_t = torch.sigmoid(gate_f_bar) * c_bar_tm1 + torch.sigmoid(gate_i_bar) * gate_z
        delta_t = F.softplus(gate_delta)
        c_d_t = c_bar_t + (c_t - c_bar_t) * torch.exp(-delta_t * duration_t.view(-1, 1))
        h_d_t = torch.sigmoid(gate_o) * torch.tanh(c_d_t)
        return h_d_t, c_d_t, c_bar_t


class CTLSTM(nn.Module):
    def __init__(self, hidden_size, type_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.cell = CTLSTMCell(hidden_size)
        self.wa = nn.Linear(hidden_size, type_size)
        self.emb = nn.Embedding(type_size + 1, hidden_size)

    def init_states(self, batch_size):
        self.h_d = torch.zeros(batch_size, self.hidden_size)
        self.c_d = torch.zeros(batch_size, self.hidden_size)
        self.c_bar = torch.zeros(batch_size, self.hidden_size)

    def forward(self, event_seqs, duration_seqs):
        batch_size, batch_length = event_seqs.shape
        h_list = []
        for t in range(batch_length):
            self.init_states(batch_size)  # expect: TBP015
            self.h_d, self.c_d, self.c_bar = self.cell(
                self.emb(event_seqs[:, t]), duration_seqs[:, t], (self.h_d, self.c_d, self.c_bar))
            h_list.append(self.h_d)
        return torch.stack(h_list, dim=1)


def train():
    torch.manual_seed(0)
    batch, type_size = 4, 5
    model = CTLSTM(16, type_size)
    optim = torch.optim.Adam(model.parameters())
    for _i_batch in range(4):
        events = torch.randint(0, type_size, (batch, K1))
        durations = torch.rand(batch, K1)
        optim.zero_grad()
        h = model(events, durations)
        intensity = F.softplus(model.wa(h))
        batch_loss = -torch.log(intensity.gather(2, events.unsqueeze(-1))).sum() + intensity.sum()
        batch_loss.backward()
        optim.step()


if __name__ == "__main__":
    train()
