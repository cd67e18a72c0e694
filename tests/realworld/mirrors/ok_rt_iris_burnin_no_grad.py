"""Actor-critic with its LSTM state on `self`: the burn-in over the observed prefix runs under
`torch.no_grad()` inside `reset()`, imagination then unrolls with gradients, and `clear()`
drops the state afterwards.

Re-creation of the idiom in eloialonso/iris src/models/actor_critic.py (reset/imagine/clear
at 24326aa). Correct: the burn-in steps count toward the stride but not the horizon.
"""

import torch
import torch.nn as nn

BURN_IN = 3
HORIZON = 5
K1 = BURN_IN + HORIZON
K2 = HORIZON


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(6, 8)
        self.actor_linear = nn.Linear(8, 2)
        self.critic_linear = nn.Linear(8, 1)
        self.hx, self.cx = None, None

    def clear(self):
        self.hx, self.cx = None, None

    def reset(self, n, burnin_observations=None):
        self.hx = torch.zeros(n, 8)
        self.cx = torch.zeros(n, 8)
        if burnin_observations is not None:
            for i in range(burnin_observations.size(1)):
                with torch.no_grad():
                    self(burnin_observations[:, i])

    def forward(self, inputs):
        self.hx, self.cx = self.lstm(inputs, (self.hx, self.cx))
        return self.actor_linear(self.hx), self.critic_linear(self.hx)

    def imagine(self, observations, horizon):
        self.reset(observations.size(0), burnin_observations=observations[:, :-1])
        obs = observations[:, -1]
        values = []
        for _k in range(horizon):
            logits, value = self(obs)
            values.append(value)
            obs = torch.tanh(obs + 0.1 * logits.sum(-1, keepdim=True))
        self.clear()
        return torch.cat(values, 1)


def train():
    torch.manual_seed(0)
    actor_critic = ActorCritic()
    optimizer = torch.optim.Adam(actor_critic.parameters(), lr=1e-3)
    for _ in range(3):
        observations = torch.randn(4, BURN_IN + 1, 6)
        values = actor_critic.imagine(observations, HORIZON)
        loss = values.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train()
