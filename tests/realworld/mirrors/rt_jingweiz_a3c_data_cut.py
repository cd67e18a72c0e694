"""A3C worker whose LSTM state lives on the agent and is cut with `Variable(h.data)`.

Re-creation of the pattern in jingweiz/pytorch-rl core/agents/a3c_single_process.py (at
20b3b73): `_reset_lstm_hidden_vb_rollout()` rebuilds `self.lstm_hidden_vb` from `.data` at the
start of every rollout, and the rollout's actor-critic loss is back-propagated once at its
end. The cut works (each backward reaches one rollout), but `.data` bypasses autograd's
version checks. Fix: `tuple(h.detach() for h in self.lstm_hidden_vb)`.
"""

import torch
import torch.nn as nn
from torch.autograd import Variable

K1 = 5
K2 = 5


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(4, 8)
        self.policy = nn.Linear(8, 2)
        self.value = nn.Linear(8, 1)

    def forward(self, state, hidden):
        hx, cx = self.lstm(state, hidden)
        return torch.softmax(self.policy(hx), -1), self.value(hx), (hx, cx)


class Worker:
    def __init__(self):
        self.model = Model()
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), lr=1e-3)
        self._reset_lstm_hidden_vb_episode()

    def _reset_lstm_hidden_vb_episode(self):
        self.lstm_hidden_vb = (torch.zeros(1, 8), torch.zeros(1, 8))

    def _reset_lstm_hidden_vb_rollout(self):
        hx, cx = self.lstm_hidden_vb
        self.lstm_hidden_vb = (Variable(hx.data), Variable(cx.data))  # tolerate: TBP008

    def _rollout(self, observations, rewards):
        loss = 0.0
        for t in range(observations.size(0)):
            p_vb, v_vb, self.lstm_hidden_vb = self.model(observations[t], self.lstm_hidden_vb)
            action = p_vb.multinomial(1)
            advantage = rewards[t] - v_vb
            loss = loss - torch.log(p_vb.gather(1, action)) * advantage.detach() + advantage.pow(2)
        return loss.sum()

    def run(self, num_rollouts):
        for _ in range(num_rollouts):
            self.model.zero_grad()
            self._reset_lstm_hidden_vb_rollout()
            observations = torch.randn(K1, 1, 4)
            rewards = torch.randn(K1, 1, 1)
            loss = self._rollout(observations, rewards)
            loss.backward()
            self.optimizer.step()


def train():
    torch.manual_seed(0)
    Worker().run(4)


if __name__ == "__main__":
    train()
