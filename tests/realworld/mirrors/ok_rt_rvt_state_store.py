"""Streaming detector whose recurrent states are kept per data-loader worker in a small store
that detaches what it saves and zeroes the rows of sequences that start anew.

Re-creation of the idiom in uzh-rpg/RVT (modules/detection.py training_step and
modules/utils/detection.py RNNStates at b80f568): the step first resets the stored rows whose
sample is the first of its sequence, reads the stored state, unrolls the backbone over the
window, saves the final state through `save_states_and_detach` (a recursive detach), and the
loss of the window is back-propagated. Correct: each backward reaches one window.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class RNNStates:
    def __init__(self):
        self.states = {}

    @classmethod
    def recursive_detach(cls, inp):
        if isinstance(inp, torch.Tensor):
            return inp.detach()
        if isinstance(inp, (list, tuple)):
            return type(inp)(cls.recursive_detach(x) for x in inp)
        raise NotImplementedError

    @classmethod
    def recursive_reset(cls, inp, rows):
        if isinstance(inp, torch.Tensor):
            inp[rows] = 0
            return inp
        return type(inp)(cls.recursive_reset(x, rows) for x in inp)

    def save_states_and_detach(self, worker_id, states):
        self.states[worker_id] = self.recursive_detach(states)

    def get_states(self, worker_id):
        return self.states.get(worker_id)

    def reset(self, worker_id, rows):
        if worker_id in self.states:
            self.states[worker_id] = self.recursive_reset(self.states[worker_id], rows)


def train():
    torch.manual_seed(0)
    backbone = nn.LSTMCell(6, 8)
    head = nn.Linear(8, 2)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-3)
    rnn_states = RNNStates()
    for step in range(6):
        worker_id = step % 2
        is_first_sample = torch.tensor([step < 2, False, step == 4])
        rnn_states.reset(worker_id, is_first_sample)
        prev_states = rnn_states.get_states(worker_id)
        if prev_states is None:
            prev_states = (torch.zeros(3, 8), torch.zeros(3, 8))
        features = []
        for _tidx in range(K1):
            prev_states = backbone(torch.randn(3, 6), prev_states)
            features.append(prev_states[0])
        rnn_states.save_states_and_detach(worker_id, prev_states)
        loss = head(torch.stack(features)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
