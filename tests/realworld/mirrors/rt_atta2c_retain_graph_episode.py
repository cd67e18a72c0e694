"""A2C with an LSTMCell state on the encoder: a whole episode is run with gradients on and no
cut, then cut into rollout-sized windows that are back-propagated one by one with
`retain_graph=True`.

Re-creation of the pattern in rpatrik96/AttA2C src/train.py at 7ac0f59: `play_episode`
carries `self.h_t1, self.c_t1` through every step of the episode; `train` slices the stored
log-probabilities and values into windows of `rollout_size` steps and calls
`loss.backward(retain_graph=True)` and `optimizer.step()` per window. The second window's
backward walks back through the first window's graph (the state was never cut), whose saved
weights the optimizer has changed in place, and raises "one of the variables needed for
gradient computation has been modified by an inplace operation" (without the optimizer step
the horizon would grow by one window per backward). Fix (7729426, 97c4157): run rollouts of
`rollout_size` steps, cut the state between them, and drop `retain_graph`.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

K1 = 4
K2 = 4
EXPECT_RAISES = "modified by an inplace operation"


class FeatureEncoderNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTMCell(6, 8)

    def reset_lstm(self, num_envs):
        with torch.no_grad():
            self.h_t1 = self.c_t1 = torch.zeros(num_envs, 8)

    def forward(self, x):
        self.h_t1, self.c_t1 = self.lstm(x, (self.h_t1, self.c_t1))
        return self.h_t1


class A2CNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.feat_enc_net = FeatureEncoderNet()
        self.actor = nn.Linear(8, 3)
        self.critic = nn.Linear(8, 1)

    def get_action(self, s_t):
        phi_t = self.feat_enc_net(s_t)
        probs = F.softmax(self.actor(phi_t), dim=-1)
        a_t = probs.multinomial(1)
        return a_t, torch.log(probs.gather(1, a_t))[:, 0], self.critic(phi_t)[:, 0]


def play_episode(net, num_envs, num_steps):
    log_probs, values = [], []
    net.feat_enc_net.reset_lstm(num_envs)
    for _step in range(num_steps):
        s_t = torch.randn(num_envs, 6)
        a_t, log_p_a_t, value = net.get_action(s_t)
        log_probs.append(log_p_a_t)
        values.append(value)
    return torch.stack(log_probs, 1), torch.stack(values, 1)


def train():
    torch.manual_seed(0)
    num_envs, rollout_size, num_steps = 2, K1, 3 * K1
    net = A2CNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    log_probs, values = play_episode(net, num_envs, num_steps)
    rewards = torch.randn(num_envs, num_steps)
    for env_idx in range(num_envs):
        for i in range(num_steps // rollout_size):
            window = slice(i * rollout_size, (i + 1) * rollout_size)
            optimizer.zero_grad()
            advantage = rewards[env_idx, window] - values[env_idx, window].detach()
            policy_loss = (-log_probs[env_idx, window] * advantage).mean()
            value_loss = F.mse_loss(values[env_idx, window], rewards[env_idx, window])
            loss = policy_loss + value_loss
            loss.backward(retain_graph=True)  # expect: TBP005
            optimizer.step()


if __name__ == "__main__":
    train()
