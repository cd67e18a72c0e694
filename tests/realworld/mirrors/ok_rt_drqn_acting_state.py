"""Recurrent Q-learning agent whose acting state never reaches a backward.

The agent carries its recurrent state (h, c) through an episode while acting, with gradients
on, and re-initialises it per episode. Learning happens in a helper that is handed the
networks and the replay memory, never the acting state: it samples stored sequences, starts
its own zero state, and back-propagates its own loss. That backward never runs through the
acting graph, so no window is backpropagated twice. One acting step and a learner's sampled
sequence of K2 steps between backwards (stride K1 = K2 + 1); each backward spans K2 steps.
"""

import torch
import torch.nn as nn

K1 = 5
K2 = 4


class QNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, obs, h, c):
        out, (h, c) = self.lstm(obs, (h, c))
        return self.head(out), h, c


def learn(q_net, memory, optimizer):
    obs = memory[torch.randint(0, memory.size(0), (2,))]
    h = torch.zeros(1, 2, 8)
    c = torch.zeros(1, 2, 8)
    q, _, _ = q_net(obs, h, c)
    loss = q.pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def train():
    torch.manual_seed(0)
    q_net = QNet()
    optimizer = torch.optim.Adam(q_net.parameters(), lr=1e-3)
    memory = torch.randn(6, K2, 3)
    for episode in range(2):
        h = torch.zeros(1, 1, 8)
        c = torch.zeros(1, 1, 8)
        obs = torch.randn(1, 1, 3)
        for t in range(5):
            q, h, c = q_net(obs, h, c)
            obs = torch.randn(1, 1, 3) + q.mean()
            learn(q_net, memory, optimizer)


if __name__ == "__main__":
    train()
