"""LSTM Q-network agent whose `learn()` keeps a running total of the loss on the agent.

Re-creates chopsticks-user/Pytorch-LSTM-DDQN 463afa2 (`lstm_qn.py`): `learn()` runs once per
environment step, back-propagates one Q-learning loss and then does
`self.total_loss = self.total_loss + loss` for its running average. Nothing raises, but the
attribute chains every update's graph (the LSTM's included) to the total for the whole run.
Fix: `self.total_loss = self.total_loss + loss.item()`.
"""

import torch
import torch.nn as nn

K1 = 4
K2 = 4


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 6)
        self.head = nn.Linear(6, 2)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=0.01)
        self.loss_fn = nn.HuberLoss()
        self.total_loss = 0.0
        self.average_loss = 0.0
        self.steps = 0

    def learn(self, states, targets):
        out, _ = self.lstm(states)
        q = self.head(out[-1])
        loss = self.loss_fn(q, targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        self.total_loss = self.total_loss + loss  # expect: TBP006
        self.average_loss = self.total_loss / self.steps


def train():
    torch.manual_seed(0)
    agent = Agent()
    for _step in range(3):
        states = torch.randn(K1, 2, 3)
        targets = torch.randn(2, 2)
        agent.learn(states, targets)


if __name__ == "__main__":
    train()
