"""ACER worker: the on-policy LSTM state lives on the agent and is cut with `Variable(h.data)`
at every rollout.

Re-creation of the pattern in jingweiz/pytorch-rl core/agents/acer_single_process.py (at
20b3b73): `_reset_on_policy_lstm_hidden_vb_rollout()` rebuilds `self.on_policy_lstm_hidden_vb`
from `.data` before every on-policy rollout. (The original back-propagates each rollout in two
stages through the same graph, with `retain_graph=True` on the first; this mirror keeps one
backward per rollout.) The cut works, but `.data` bypasses autograd's version checks. Fix:
`tuple(h.detach() for h in self.on_policy_lstm_hidden_vb)`.
"""

import torch
import torch.nn as nn
from torch.autograd import Variable

K1 = 4
K2 = 4


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(4, 8)
        self.policy = nn.Linear(8, 3)
        self.q = nn.Linear(8, 3)

    def forward(self, state, hidden):
        hx, cx = self.lstm(state, hidden)
        return torch.softmax(self.policy(hx), -1), self.q(hx), (hx, cx)


class Learner:
    def __init__(self):
        self.model = Model()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-2)
        self.on_policy_lstm_hidden_vb = (torch.zeros(1, 8), torch.zeros(1, 8))

    def _reset_on_policy_lstm_hidden_vb_rollout(self):
        hx, cx = self.on_policy_lstm_hidden_vb
        self.on_policy_lstm_hidden_vb = (Variable(hx.data), Variable(cx.data))  # tolerate: TBP008

    def _on_policy_rollout(self):
        policy_vb, q_vb, actions = [], [], []
        for _t in range(K1):
            p_vb, q, self.on_policy_lstm_hidden_vb = self.model(
                torch.randn(1, 4), self.on_policy_lstm_hidden_vb
            )
            policy_vb.append(p_vb)
            q_vb.append(q)
            actions.append(p_vb.multinomial(1))
        return policy_vb, q_vb, actions

    def _backward(self, policy_vb, q_vb, actions):
        policy_loss_vb, value_loss_vb = 0.0, 0.0
        for p, q, a in zip(policy_vb, q_vb, actions, strict=True):
            advantage = q.gather(1, a).detach()
            policy_loss_vb = policy_loss_vb - (torch.log(p.gather(1, a)) * advantage).mean()
            value_loss_vb = value_loss_vb + (q.gather(1, a) - 1.0).pow(2).mean()
        self.model.zero_grad()
        (policy_loss_vb + value_loss_vb).backward()
        self.optimizer.step()

    def run(self, num_rollouts):
        for _ in range(num_rollouts):
            self._reset_on_policy_lstm_hidden_vb_rollout()
            self._backward(*self._on_policy_rollout())


def train():
    torch.manual_seed(0)
    Learner().run(4)


if __name__ == "__main__":
    train()
